"""Dispatch's reads: a demand, or a page of them, as far as the principal's reach goes, and
whether each is shown with its exact place (`domain/access.py` says who may read what)."""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.dispatch.adapters import reach, repository
from services.dispatch.domain import access, refusals
from services.dispatch.domain.model import Demand
from shared.auth import Principal
from shared.http.problems import not_found
from shared.store.mongo import Database, Document


@dataclass(frozen=True)
class Shown:
    """A demand as the principal reads it: `full` when the exact place is theirs to see."""

    demand: Demand
    full: bool


def scopes_of(reach_: access.Reach) -> list[Document]:
    """The reach as the store's alternatives (empty: every demand). A reach of no community
    gives `$in: []`, which matches nothing: fail closed."""
    if reach_.everything:
        return []
    scopes: list[Document] = [{"community_id": {"$in": sorted(reach_.communities)}}]
    if reach_.street is not None:
        scopes.append({"street": reach_.street, "level": {"$in": list(access.STREET_LEVELS)}})
    if reach_.district is not None:
        scopes.append({"district": reach_.district, "level": {"$in": list(access.DISTRICT_LEVELS)}})
    return scopes


async def _shown(db: Database, principal: Principal, demands: Sequence[Demand]) -> list[Shown]:
    accepted = await reach.accepted_on(db, principal, (demand.id for demand in demands))
    return [
        Shown(demand, access.sees_the_exact_place(principal, demand.id in accepted))
        for demand in demands
    ]


async def demand_for(db: Database, principal: Principal, demand_id: str) -> Shown:
    demand = await repository.get_demand(db, demand_id)
    if demand is None:
        raise not_found("demand", demand_id)
    served = await reach.communities_of(db, principal)
    if not access.may_read(principal, demand, served):
        raise refusals.NotYours(
            f"demand '{demand_id}' belongs to community '{demand.community_id}', "
            "which is not within your reach"
        )
    [shown] = await _shown(db, principal, [demand])
    return shown


async def demands_for(
    db: Database, principal: Principal, query: repository.DemandQuery
) -> tuple[list[Shown], bool]:
    """A page of the demands the principal may read (newest first) and whether more follow;
    `query.scopes` is set here, from the principal's reach."""
    served = await reach.communities_of(db, principal)
    if query.community_id is not None:
        community = await repository.get_community(db, query.community_id)
        if not access.may_list_community(principal, query.community_id, community, served):
            raise refusals.NotYours(
                f"demands of community '{query.community_id}' are not yours to read"
            )
    scoped = replace(
        query, scopes=scopes_of(access.reach_of(principal, served)), limit=query.limit + 1
    )
    demands = await repository.list_demands(db, scoped)
    return await _shown(db, principal, demands[: query.limit]), len(demands) > query.limit
