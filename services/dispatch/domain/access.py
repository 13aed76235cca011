"""Who may do and read what in dispatch: pure predicates over a `Principal` (no I/O).

Posting, editing and closing a demand is its community's secretary's (or an admin's).
Reading follows the whistle: a secretary reads their community's demands and those escalated
to their street or district (street and district staff hold a secretary token whose
`community` is that street's or district's id); a volunteer or unit reads the demands of the
communities it serves (from dispatch's projection of units' registry); auditors and admins
read everything. The exact place and the description reach a claimant only while their claim
is accepted.
"""

from collections.abc import Collection
from dataclasses import dataclass

from services.dispatch.domain.model import Community, Demand
from shared.auth import Principal, Role
from shared.events.catalogue import Level

_SEE_ALL = (Role.AUDITOR, Role.ADMIN)
_CLAIMANTS = (Role.VOLUNTEER, Role.UNIT)
# The levels at which a street, or a district, hears of a demand of one of its communities.
STREET_LEVELS: tuple[Level, ...] = ("street", "district")
DISTRICT_LEVELS: tuple[Level, ...] = ("district",)


@dataclass(frozen=True)
class Reach:
    """The demands a principal may read: every one, or those of `communities`, or those
    escalated to `street` or `district` (any one admits)."""

    everything: bool = False
    communities: frozenset[str] = frozenset()
    street: str | None = None
    district: str | None = None

    def admits(self, demand: Demand) -> bool:
        return (
            self.everything
            or demand.community_id in self.communities
            or (demand.street == self.street and demand.level in STREET_LEVELS)
            or (demand.district == self.district and demand.level in DISTRICT_LEVELS)
        )


def reach_of(principal: Principal, served: Collection[str] = ()) -> Reach:
    """`served`: the communities a volunteer or unit serves (empty until its registration
    reached dispatch: then it reads nothing)."""
    if principal.role in _SEE_ALL:
        return Reach(everything=True)
    if principal.role in _CLAIMANTS:
        return Reach(communities=frozenset(served))
    scope = principal.community
    return Reach(communities=frozenset({scope} if scope else ()), street=scope, district=scope)


def may_read(principal: Principal, demand: Demand, served: Collection[str] = ()) -> bool:
    return reach_of(principal, served).admits(demand)


def may_list_community(
    principal: Principal,
    community_id: str,
    community: Community | None,
    served: Collection[str] = (),
) -> bool:
    """May the principal ask for the demands of `community_id`? Naming a community outside
    one's reach is refused, not answered with a misleading empty page. A street's or
    district's staff may name the communities in it."""
    reach = reach_of(principal, served)
    if reach.everything or community_id in reach.communities:
        return True
    return (
        community is not None
        and principal.role is Role.SECRETARY
        and (principal.community in (community.street, community.district))
    )


def sees_the_exact_place(principal: Principal, accepted: bool) -> bool:
    """Claimants see a demand's address, building, coordinates and description only once
    their claim is accepted; everyone who may read the demand otherwise sees it all."""
    return principal.role not in _CLAIMANTS or accepted


def may_manage(principal: Principal, community_id: str) -> bool:
    """Post, edit, cancel or complete the demands of `community_id`."""
    return principal.is_admin or principal.is_secretary_of(community_id)
