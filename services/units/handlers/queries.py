"""Units' reads and who gets which: records, claims and the open demands within reach.

Open demands (OWASP API1): volunteers and units read what reaches the communities they serve
(their own community's, then what was escalated to its street or district); a secretary
their community's and what was escalated to them (street/district staff hold a secretary
token whose `community` is that street or district); auditors and admins everything. Naming
a community outside one's reach is a 403, not a misleading empty page.
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.units.adapters import repository
from services.units.domain import access, rules
from services.units.domain.model import (
    Claim,
    Community,
    Demand,
    Unit,
    Volunteer,
)
from services.units.domain.refusals import Forbidden, VolunteerErased
from shared.auth import Principal, Role
from shared.clock import utcnow
from shared.events.catalogue import Claimant
from shared.http.problems import not_found
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import Tx

# --- the registry ---------------------------------------------------------------------------


async def unit_for(db: Database, unit_id: str, actor: Principal) -> Unit:
    unit = await repository.get_unit(db, unit_id)
    if unit is None:
        raise not_found("unit", unit_id)
    if not access.may_read_unit(actor, unit):
        raise Forbidden("a unit's record is for its members and its communities' secretaries")
    return unit


async def volunteer_record(db: Database, volunteer_id: str, tx: Tx | None = None) -> Volunteer:
    """The volunteer; 410 once erased, 404 if there never was one."""
    volunteer = await repository.get_volunteer(db, volunteer_id, tx)
    if volunteer is None:
        if await repository.get_erased_volunteer(db, volunteer_id, tx) is not None:
            raise VolunteerErased(volunteer_id)
        raise not_found("volunteer", volunteer_id)
    return volunteer


async def volunteer_for(db: Database, volunteer_id: str, actor: Principal) -> Volunteer:
    volunteer = await volunteer_record(db, volunteer_id)
    if not access.may_read_volunteer(actor, volunteer):
        raise Forbidden("a volunteer's record is for them and their community's secretary")
    return volunteer


async def community(db: Database, community_id: str) -> Community:
    found = await repository.get_community(db, community_id)
    if found is None:
        raise not_found("community", community_id)
    return found


# A registration may name a community dispatch registered a moment ago: units hears of it
# from `community.registered` a few milliseconds to seconds after dispatch answered 201
# (how long it waits: UnitsSettings.community_arrival_s).
POLL_S = 0.05


async def communities_arrived(
    db: Database, community_ids: Sequence[str], *, within_s: float
) -> bool:
    """True as soon as units holds every named community; False once `within_s` passed.

    Waited for before the command's transaction (whose snapshot would never see it arrive),
    so only a community nobody registered is refused `unknown-community`, after the wait."""
    wanted = set(community_ids)
    deadline = time.monotonic() + within_s
    delay = POLL_S
    while True:
        known = {found.id for found in await repository.get_communities(db, list(wanted))}
        wanted -= known
        if not wanted:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.5)


# --- claimants ------------------------------------------------------------------------------


async def claimant_profile(
    tx: Tx | None, actor: Principal, db: Database | None = None
) -> tuple[Claimant, Unit | Volunteer]:
    """Who claims (a unit token for its unit, a volunteer token for themself), registered:
    read in the command's transaction (`tx`), or, for a read, from `db` outside one."""
    store = tx.db if tx is not None else db
    assert store is not None, "a transaction or a database to read from"
    claimant = access.claimant_of(actor)
    if claimant is None:
        raise Forbidden("claims are made by a unit (for itself) or a volunteer (for themself)")
    profile: Unit | Volunteer | None
    if claimant.type == "unit":
        profile = await repository.get_unit(store, claimant.id, tx)
    else:
        profile = await repository.get_volunteer(store, claimant.id, tx)
    if profile is None:
        raise Forbidden(f"{claimant.type} '{claimant.id}' is not registered")
    return claimant, profile


def communities_served(profile: Unit | Volunteer) -> list[str]:
    return list(profile.communities) if isinstance(profile, Unit) else [profile.community_id]


@dataclass(frozen=True)
class ClaimantView:
    """A claimant reading open demands: who it is, what it holds, the communities it serves."""

    claimant: Claimant
    profile: Unit | Volunteer
    served: list[Community]

    def may_claim(self, demand: Demand) -> bool:
        """Within its reach and its skills (whether it already holds one is asked apart)."""
        return rules.reaches(demand, self.served) and not rules.missing_skills(
            demand.skills, self.profile.skills
        )


async def claimant_view(db: Database, actor: Principal) -> ClaimantView:
    claimant, profile = await claimant_profile(None, actor, db)
    served = await repository.get_communities(db, communities_served(profile))
    return ClaimantView(claimant, profile, served)


async def claimable_for(db: Database, view: ClaimantView, demands: list[Demand]) -> list[Demand]:
    """The demands this claimant may claim: within its reach, its skills, not yet claimed."""
    fitting = [demand for demand in demands if view.may_claim(demand)]
    held = await repository.holding_among(db, view.claimant, [d.id for d in fitting])
    return [demand for demand in fitting if demand.id not in held]


# --- claims ---------------------------------------------------------------------------------


def _claims_visible(actor: Principal) -> dict[str, Any]:
    """Who reads which claims: their own, their community's, or (auditor, admin) all."""
    if actor.role is Role.UNIT:
        return {"claimant_key": f"unit:{actor.unit}"}
    if actor.role is Role.VOLUNTEER:
        return {"claimant_key": f"volunteer:{actor.volunteer}"}
    if actor.role is Role.SECRETARY:
        return {"community_id": actor.community}
    return {}


async def claims_for(
    db: Database,
    actor: Principal,
    *,
    demand_id: str | None,
    claimant_id: str | None,
    limit: int,
) -> list[Claim]:
    query = _claims_visible(actor)
    if demand_id:
        query["demand_id"] = demand_id
    if claimant_id:
        query["claimant.id"] = claimant_id
    return await repository.list_claims(db, query, limit)


async def claim_for(db: Database, claim_id: str, actor: Principal) -> Claim:
    # One not visible is as not there: its id says nothing to someone who may not read it.
    claims = await repository.list_claims(db, {**_claims_visible(actor), "_id": claim_id}, 1)
    if not claims:
        raise not_found("claim", claim_id)
    return claims[0]


async def code_demand(tx: Tx, demand_id: str, actor: Principal) -> Demand:
    """The demand whose on-site code this actor may see: its community's secretary, or admin."""
    demand = await repository.get_demand(tx.db, demand_id, tx)
    if demand is None:
        raise not_found("demand", demand_id)
    if not access.may_see_check_in_code(actor, demand):
        raise Forbidden(f"only the secretary of community '{demand.community_id}' sees its code")
    return demand


async def check_in_code(tx: Tx, demand_id: str, actor: Principal) -> tuple[Demand, str]:
    demand = await code_demand(tx, demand_id, actor)
    code = await repository.get_check_in_code(tx.db, demand.id, tx)
    assert code is not None  # every demand gets one when units first hears of it
    return demand, code


# --- open demands ---------------------------------------------------------------------------


def _outside_reach(community_id: str) -> Forbidden:
    return Forbidden(f"demands of community '{community_id}' are not within your reach")


async def _scopes_for(
    db: Database, actor: Principal, served: Sequence[Community], community_id: str | None
) -> list[Document] | None:
    """The alternatives that admit a demand (None: all), after refusing a community outside
    the caller's reach. `served`: the communities a volunteer or unit serves."""
    if access.reads_every_demand(actor):
        return None
    if actor.role in (Role.UNIT, Role.VOLUNTEER):
        if community_id is not None:
            named = await repository.get_community(db, community_id)
            if not access.claimant_reaches(named, served):
                raise _outside_reach(community_id)
        return repository.claimant_reach(served)
    scope = actor.community or ""
    if community_id is not None and community_id != scope:
        named = await repository.get_community(db, community_id)
        if not access.secretary_reaches(scope, community_id, named):
            raise _outside_reach(community_id)
    return repository.secretary_reach(scope)


# A page of claimable demands is filtered after the query (skills, claims held): scan at
# most this many candidates per request, then hand back a cursor where the scan stopped.
OPEN_DEMANDS_SCAN = 1000


@dataclass(frozen=True)
class OpenDemandsPage:
    demands: list[Demand]
    # The private details (`demand.details`) by demand id, for readers who may see them.
    details: Mapping[str, Document]
    # Where the next page starts; None at the end of the list.
    next_key: repository.OpenDemandsKey | None
    withheld: bool


async def open_demands(
    db: Database,
    actor: Principal,
    *,
    community_id: str | None,
    skill: str | None,
    limit: int,
    after: repository.OpenDemandsKey | None,
) -> OpenDemandsPage:
    """Demands that still need people within the caller's reach, most urgent first; a
    claimant sees what it may claim, without the exact place until its claim is accepted.

    Read outside any transaction: a page is a moment's view, and the claim decides under its
    own. (In one, each page queued behind every claim on the embedded stand-in, which runs
    one transaction at a time.)"""
    view = await claimant_view(db, actor) if access.claimant_of(actor) is not None else None
    scopes = await _scopes_for(db, actor, view.served if view else [], community_id)
    found: list[Demand] = []
    next_key: repository.OpenDemandsKey | None = None
    scanned = 0
    batch_size = limit + 1
    while True:
        batch = await repository.open_demands(
            db,
            scopes=scopes,
            community_ids=[community_id] if community_id else None,
            skill=skill,
            now=utcnow(),
            after=after,
            limit=batch_size,
        )
        candidates = [demand for demand, _ in batch]
        if view is not None:
            candidates = await claimable_for(db, view, candidates)
        kept = {demand.id for demand in candidates}
        full = False
        for demand, key in batch:
            if demand.id in kept:
                if len(found) == limit:
                    full = True  # one more exists: the next page starts after the last kept
                    break
                found.append(demand)
                next_key = key
            after = key
        scanned += len(batch)
        if full:
            break
        if len(batch) < batch_size:
            next_key = None  # the end of the list
            break
        if scanned >= OPEN_DEMANDS_SCAN:
            next_key = after  # scan budget spent: go on from there next time
            break
    details = {} if view else await repository.demand_details(db, [d.id for d in found])
    return OpenDemandsPage(found, details, next_key, withheld=view is not None)


async def demand_of_claim(db: Database, claim_id: str) -> str:
    """The demand a claim is on, to serialise a command on the claim with the demand's
    claims. Read before the command's transaction, which is safe: a claim never changes
    demand. An unknown claim serialises on its own id (and is refused not-found inside)."""
    found = await repository.get_claim(db, claim_id)
    return found.demand_id if found else claim_id
