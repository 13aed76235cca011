"""What dispatch knows of who may see which demand, projected from units' events.

A volunteer's or unit's token names only the volunteer or unit (a token's role and identity
agree; it names no community), so dispatch keeps, from events it already consumes:

- `reach`: the communities each volunteer (`volunteer.registered`) and unit
  (`unit.registered`) serves, so their reads are scoped to those communities;
- `claimants`: each claim's claimant and state (`claim.accepted`/`promoted`, then
  `withdrawn`/`released`), so a demand's exact place and description reach a claimant only
  while their claim is accepted. A withdrawal or release is final: a late `accepted`
  cannot revive it (events may arrive in any order).

Nothing synchronous between services: until the registration has arrived, a new volunteer
or unit simply sees no demands yet.
"""

from collections.abc import Iterable, Sequence
from typing import Literal

from shared.auth import Principal, Role
from shared.events.catalogue import ClaimData
from shared.store.mongo import Database
from shared.store.unit_of_work import Tx

REACH = "reach"
CLAIMANTS = "claimants"

ClaimantState = Literal["accepted", "ended"]
_CLAIMANT_TYPES = {Role.VOLUNTEER: "volunteer", Role.UNIT: "unit"}


async def ensure_indexes(db: Database) -> None:
    await db[CLAIMANTS].create_index([("claimant", 1), ("demand_id", 1)])


def _reach_id(kind: str, identity: str) -> str:
    return f"{kind}:{identity}"


async def record_reach(tx: Tx, kind: str, identity: str, communities: Sequence[str]) -> None:
    """The communities the `kind` ("unit" or "volunteer") `identity` serves."""
    await tx.db[REACH].replace_one(
        {"_id": _reach_id(kind, identity)},
        {"communities": list(communities)},
        upsert=True,
        session=tx.session,
    )


async def record_claim(tx: Tx, data: ClaimData, state: ClaimantState) -> None:
    existing = await tx.db[CLAIMANTS].find_one({"_id": data.claim_id}, session=tx.session)
    if existing is not None and existing["state"] == "ended":
        return  # withdrawn or released: final, whatever arrives later
    await tx.db[CLAIMANTS].replace_one(
        {"_id": data.claim_id},
        {
            "demand_id": data.demand_id,
            "claimant": _reach_id(data.claimant.type, data.claimant.id),
            "state": state,
        },
        upsert=True,
        session=tx.session,
    )


def _claimant_key(principal: Principal) -> str | None:
    kind = _CLAIMANT_TYPES.get(principal.role)
    identity = principal.identity
    return _reach_id(kind, identity) if kind and identity else None


async def communities_of(db: Database, principal: Principal) -> Sequence[str]:
    """The communities a volunteer or unit serves (empty until its registration arrived)."""
    key = _claimant_key(principal)
    if key is None:
        return ()
    document = await db[REACH].find_one({"_id": key})
    return tuple(document["communities"]) if document else ()


async def accepted_on(db: Database, principal: Principal, demand_ids: Iterable[str]) -> set[str]:
    """Of these demands, those on which the principal holds an accepted claim."""
    key = _claimant_key(principal)
    ids = list(demand_ids)
    if key is None or not ids:
        return set()
    cursor = db[CLAIMANTS].find(
        {"claimant": key, "demand_id": {"$in": ids}, "state": "accepted"}, {"demand_id": 1}
    )
    return {document["demand_id"] async for document in cursor}
