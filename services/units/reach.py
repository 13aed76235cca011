"""Which open demands a caller may read at units (OWASP API1): the same reach as dispatch.

Volunteers and units read what reaches the communities they serve (their own community's,
then what was escalated to its street or district); a secretary their community's and what
was escalated to them (street/district staff hold a secretary token whose `community` is that
street or district); auditors and admins everything. Naming a community outside one's reach
is a 403, not a misleading empty page.
"""

from collections.abc import Sequence

from services.units.adapters import repository
from services.units.domain.model import Community
from shared.auth import Principal, Role, forbidden
from shared.store.mongo import Database, Document


def _forbidden(community_id: str) -> Exception:
    return forbidden(f"demands of community '{community_id}' are not within your reach")


def claimant_scopes(served: Sequence[Community]) -> list[Document]:
    return [
        {"community_id": {"$in": [community.id for community in served]}},
        {"level": "street", "street": {"$in": [community.street for community in served]}},
        {"level": "district", "district": {"$in": [community.district for community in served]}},
    ]


def secretary_scopes(scope: str) -> list[Document]:
    return [
        {"community_id": scope},
        {"street": scope, "level": {"$in": ["street", "district"]}},
        {"district": scope, "level": "district"},
    ]


async def scopes_for(
    db: Database,
    principal: Principal,
    served: Sequence[Community],
    community_id: str | None,
) -> list[Document] | None:
    """The alternatives that admit a demand (None: all), after refusing a community outside
    the caller's reach. `served`: the communities a volunteer or unit serves."""
    if principal.role in (Role.ADMIN, Role.AUDITOR):
        return None
    if principal.role in (Role.UNIT, Role.VOLUNTEER):
        if community_id is not None:
            community = await repository.get_community(db, community_id)
            near = community is not None and any(
                own.id == community.id
                or own.street == community.street
                or own.district == community.district
                for own in served
            )
            if not near:
                raise _forbidden(community_id)
        return claimant_scopes(served)
    scope = principal.community or ""
    if community_id is not None and community_id != scope:
        community = await repository.get_community(db, community_id)
        if community is None or scope not in (community.street, community.district):
            raise _forbidden(community_id)
    return secretary_scopes(scope)
