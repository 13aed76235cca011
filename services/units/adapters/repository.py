"""Units' MongoDB collections: communities, demands, units, volunteers and claims.

Every write takes the transaction (`tx`); reads take it when they decide a write. The slot
accounting lives on the demand document (`accepted`) and only ever moves through
`take_slots` / `give_back_slots`, each one atomic conditional update.

Each demand document also carries its `availability` ("room", "full" or "closed"), derived
from status, accepted and slots by the same update that changes any of them, so the open
demands a volunteer may still claim are one indexed equality rather than a comparison of two
fields on every stored demand (`$expr`, which no index serves: on the embedded stand-in it
read every demand for every page of open demands).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from services.units.domain.model import (
    COMMITTED_STATUSES,
    HOLDING_STATUSES,
    PRIORITY_RANK,
    Claim,
    ClaimStatus,
    Community,
    Demand,
    DemandStatus,
    EligibilityOverride,
    ErasedVolunteer,
    Unit,
    Volunteer,
    claimant_key,
)
from services.units.domain.rules import Window
from shared.events.catalogue import Claimant, DemandUpdated, Level
from shared.http.idempotency_keys import IDEMPOTENCY_COLLECTION
from shared.store.mongo import Database, Document
from shared.store.outbox import OUTBOX_COLLECTION
from shared.store.unit_of_work import RetryTransaction, Tx

COMMUNITIES = "communities"
DEMANDS = "demands"
UNITS = "units"
VOLUNTEERS = "volunteers"
CLAIMS = "claims"
ERASED_VOLUNTEERS = "erased_volunteers"
# The private half of demands (`demand.details`), kept apart so it can arrive in any order.
DEMAND_DETAILS = "demand_details"
# Closures that arrived before the demand itself (a redelivery can overtake it).
EARLY_CLOSURES = "early_closures"
# A secretary's one-claim waivers of an eligibility rule, one per demand and volunteer.
ELIGIBILITY_OVERRIDES = "eligibility_overrides"
# Edits that arrived before the demand itself, the newest of each kept until it comes.
EARLY_EDITS = "early_edits"


# The last stage of every update that moves status, accepted or slots: availability as
# they now are (an update pipeline, so it is the same atomic write).
_DERIVE_AVAILABILITY: Document = {
    "$set": {
        "availability": {
            "$cond": [
                {"$ne": ["$status", "open"]},
                "closed",
                {"$cond": [{"$lt": ["$accepted", "$slots"]}, "room", "full"]},
            ]
        }
    }
}


def _availability(status: DemandStatus, accepted: int, slots: int) -> str:
    if status != "open":
        return "closed"
    return "room" if accepted < slots else "full"


async def ensure_indexes(db: Database) -> None:
    await db[DEMANDS].create_index([("availability", 1), ("priority_rank", 1), ("fill_by", 1)])
    # Demands stored before availability was kept get it once, at start-up.
    await db[DEMANDS].update_many({"availability": {"$exists": False}}, [_DERIVE_AVAILABILITY])
    await db[CLAIMS].create_index([("demand_id", 1), ("status", 1), ("created_at", 1)])
    await db[CLAIMS].create_index([("claimant_key", 1), ("status", 1), ("ends_at", 1)])
    await db[CLAIMS].create_index([("claimant_key", 1), ("demand_id", 1)])


def _session(tx: Tx | None) -> Any:
    return tx.session if tx is not None else None


def _document(model: Community | Demand | Unit | Volunteer | Claim) -> Document:
    document = model.model_dump()
    document["_id"] = document.pop("id")
    return document


def _model[M: (Community, Demand, Unit, Volunteer, Claim)](model: type[M], document: Document) -> M:
    fields = {key: value for key, value in document.items() if key in model.model_fields}
    fields["id"] = document["_id"]
    return model.model_validate(fields)


# --- communities ----------------------------------------------------------------------------


async def save_community(tx: Tx, community: Community) -> None:
    document = _document(community)
    await tx.db[COMMUNITIES].replace_one(
        {"_id": community.id}, document, upsert=True, session=tx.session
    )


async def get_community(db: Database, community_id: str) -> Community | None:
    document = await db[COMMUNITIES].find_one({"_id": community_id})
    return _model(Community, document) if document else None


async def get_communities(
    db: Database, community_ids: Sequence[str], tx: Tx | None = None
) -> list[Community]:
    cursor = db[COMMUNITIES].find({"_id": {"$in": list(community_ids)}}, session=_session(tx))
    return [_model(Community, document) async for document in cursor]


# --- demands --------------------------------------------------------------------------------


async def insert_demand(tx: Tx, demand: Demand, check_in_code: str) -> bool:
    """Store a newly published demand; False if units already had it."""
    document = _document(demand)
    document["priority_rank"] = PRIORITY_RANK[demand.priority]
    document["check_in_code"] = check_in_code
    document["availability"] = _availability(demand.status, demand.accepted, demand.slots)
    result = await tx.db[DEMANDS].update_one(
        {"_id": demand.id}, {"$setOnInsert": document}, upsert=True, session=tx.session
    )
    return result.upserted_id is not None


async def get_demand(db: Database, demand_id: str, tx: Tx | None = None) -> Demand | None:
    document = await db[DEMANDS].find_one({"_id": demand_id}, session=_session(tx))
    return _model(Demand, document) if document else None


async def set_level(tx: Tx, demand_id: str, level: Level) -> None:
    await tx.db[DEMANDS].update_one(
        {"_id": demand_id}, {"$set": {"level": level}}, session=tx.session
    )


def _edited_fields(edit: DemandUpdated) -> Document:
    fields: Document = {
        "title": edit.title,
        "slots": edit.slots,
        "priority": edit.priority,
        "priority_rank": PRIORITY_RANK[edit.priority],
        "skills": list(edit.skills),
        "fill_by": edit.fill_by,
        # Edits may arrive out of order: only a newer demand version than the last applied.
        "edit_version": edit.version,
    }
    # Values in an update pipeline are expressions: a title starting with "$" is text here.
    return {name: {"$literal": value} for name, value in fields.items()}


async def apply_edit(tx: Tx, edit: DemandUpdated) -> Demand | None:
    """The demand as `edit` leaves it; None if units lacks it or already has a newer edit."""
    document = await tx.db[DEMANDS].find_one_and_update(
        {
            "_id": edit.demand_id,
            "$or": [{"edit_version": {"$exists": False}}, {"edit_version": {"$lt": edit.version}}],
        },
        [{"$set": _edited_fields(edit)}, _DERIVE_AVAILABILITY],
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    return _model(Demand, document) if document else None


async def remember_early_edit(tx: Tx, edit: DemandUpdated) -> None:
    """Keep the newest edit of a demand units has not yet seen published."""
    kept = await tx.db[EARLY_EDITS].find_one({"_id": edit.demand_id}, session=tx.session)
    if kept is not None and kept["version"] >= edit.version:
        return
    await tx.db[EARLY_EDITS].replace_one(
        {"_id": edit.demand_id}, edit.model_dump(mode="json"), upsert=True, session=tx.session
    )


async def take_early_edit(tx: Tx, demand_id: str) -> DemandUpdated | None:
    document = await tx.db[EARLY_EDITS].find_one_and_delete({"_id": demand_id}, session=tx.session)
    if document is None:
        return None
    document.pop("_id")
    return DemandUpdated.model_validate(document)


async def close_demand(tx: Tx, demand_id: str, status: DemandStatus) -> Demand | None:
    """Close an open demand (cancelled, completed, expired); None if it was not open."""
    document = await tx.db[DEMANDS].find_one_and_update(
        {"_id": demand_id, "status": "open"},
        {"$set": {"status": status, "availability": "closed"}},
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    return _model(Demand, document) if document else None


async def remember_early_closure(tx: Tx, demand_id: str, status: DemandStatus) -> None:
    await tx.db[EARLY_CLOSURES].update_one(
        {"_id": demand_id},
        {"$setOnInsert": {"status": status}},
        upsert=True,
        session=tx.session,
    )


async def early_closure(tx: Tx, demand_id: str) -> DemandStatus | None:
    document = await tx.db[EARLY_CLOSURES].find_one({"_id": demand_id}, session=tx.session)
    if document is None:
        return None
    status: DemandStatus = document["status"]
    return status


async def take_slots(tx: Tx, demand: Demand, headcount: int) -> Demand | None:
    """Check the remaining slots and take `headcount` of them in one atomic update.

    None when the demand is not open or has fewer than `headcount` slots left. Two concurrent
    takers both write this document, so one of them conflicts and is retried: the check and
    the increment can never interleave, in one process or across replicas.

    `demand` is as this transaction read it; its slots are part of the condition (a plain
    comparison an index lookup by `_id` can answer, where `accepted + n <= slots` compares two
    fields). Slots edited since that read fail the condition, as a full demand does.
    """
    document = await tx.db[DEMANDS].find_one_and_update(
        {
            "_id": demand.id,
            "status": "open",
            "slots": demand.slots,
            "accepted": {"$lte": demand.slots - headcount},
        },
        [{"$set": {"accepted": {"$add": ["$accepted", headcount]}}}, _DERIVE_AVAILABILITY],
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    return _model(Demand, document) if document else None


async def join_waitlist(tx: Tx, demand_id: str) -> bool:
    """Count a waitlisted claim on the demand document (False if the demand is not open).

    Writing the demand makes a new waitlisted claim conflict with a concurrent cancellation
    (which would otherwise not see it to release it) and with a concurrent withdrawal (which
    would otherwise not see it to promote it).
    """
    result = await tx.db[DEMANDS].update_one(
        {"_id": demand_id, "status": "open"}, {"$inc": {"waitlisted": 1}}, session=tx.session
    )
    return result.modified_count == 1


async def give_back_slots(tx: Tx, demand_id: str, headcount: int) -> Demand:
    document = await tx.db[DEMANDS].find_one_and_update(
        {"_id": demand_id, "accepted": {"$gte": headcount}},
        [{"$set": {"accepted": {"$add": ["$accepted", -headcount]}}}, _DERIVE_AVAILABILITY],
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    if document is None:
        raise LookupError(f"demand {demand_id} does not hold {headcount} accepted places")
    return _model(Demand, document)


OpenDemandsKey = tuple[int, datetime, str]


def claimant_reach(served: Sequence[Community]) -> list[Document]:
    """What reaches a volunteer or unit serving `served`: their communities' demands, and
    those escalated to their streets or districts (`scopes` of `open_demands`)."""
    return [
        {"community_id": {"$in": [community.id for community in served]}},
        {"level": "street", "street": {"$in": [community.street for community in served]}},
        {"level": "district", "district": {"$in": [community.district for community in served]}},
    ]


def secretary_reach(scope: str) -> list[Document]:
    """What reaches a secretary token's `community`: a community, street or district."""
    return [
        {"community_id": scope},
        {"street": scope, "level": {"$in": ["street", "district"]}},
        {"district": scope, "level": "district"},
    ]


async def open_demands(
    db: Database,
    *,
    scopes: Sequence[Document] | None,
    community_ids: Sequence[str] | None,
    skill: str | None,
    now: datetime,
    after: OpenDemandsKey | None = None,
    limit: int = 200,
) -> list[tuple[Demand, OpenDemandsKey]]:
    """Open demands most urgent first, each with its place in that order (for a cursor);
    `scopes` are alternatives (any one admits a demand), None admits every demand."""
    clauses: list[Document] = [
        {"availability": "room"},
        {"ends_at": {"$gt": now}},
    ]
    if scopes is not None:
        clauses.append({"$or": list(scopes)} if scopes else {"_id": {"$in": []}})
    if community_ids is not None:
        clauses.append({"community_id": {"$in": list(community_ids)}})
    if skill:
        clauses.append({"skills": skill})
    if after is not None:
        rank, fill_by, demand_id = after
        clauses.append(
            {
                "$or": [
                    {"priority_rank": {"$gt": rank}},
                    {"priority_rank": rank, "fill_by": {"$gt": fill_by}},
                    {"priority_rank": rank, "fill_by": fill_by, "_id": {"$gt": demand_id}},
                ]
            }
        )
    cursor = (
        db[DEMANDS]
        .find({"$and": clauses})
        .sort([("priority_rank", 1), ("fill_by", 1), ("_id", 1)])
        .limit(limit)
    )
    return [
        (
            _model(Demand, document),
            (document["priority_rank"], document["fill_by"], document["_id"]),
        )
        async for document in cursor
    ]


async def get_check_in_code(db: Database, demand_id: str, tx: Tx | None = None) -> str | None:
    document = await db[DEMANDS].find_one(
        {"_id": demand_id}, {"check_in_code": 1}, session=_session(tx)
    )
    return document["check_in_code"] if document else None


async def set_check_in_code(tx: Tx, demand_id: str, code: str) -> None:
    await tx.db[DEMANDS].update_one(
        {"_id": demand_id}, {"$set": {"check_in_code": code}}, session=tx.session
    )


# --- registry -------------------------------------------------------------------------------


async def insert_unit(tx: Tx, unit: Unit) -> None:
    await tx.db[UNITS].insert_one({**_document(unit), "claim_seq": 0}, session=tx.session)


async def get_unit(db: Database, unit_id: str, tx: Tx | None = None) -> Unit | None:
    document = await db[UNITS].find_one({"_id": unit_id}, session=_session(tx))
    return _model(Unit, document) if document else None


async def insert_volunteer(tx: Tx, volunteer: Volunteer) -> None:
    await tx.db[VOLUNTEERS].insert_one({**_document(volunteer), "claim_seq": 0}, session=tx.session)


async def get_volunteer(db: Database, volunteer_id: str, tx: Tx | None = None) -> Volunteer | None:
    document = await db[VOLUNTEERS].find_one({"_id": volunteer_id}, session=_session(tx))
    return _model(Volunteer, document) if document else None


async def replace_unit(tx: Tx, unit: Unit) -> None:
    """Write a corrected unit; its `claim_seq` and totals stay as the database has them."""
    document = _document(unit)
    document.pop("totals", None)
    await tx.db[UNITS].update_one({"_id": unit.id}, {"$set": document}, session=tx.session)


async def replace_volunteer(tx: Tx, volunteer: Volunteer) -> None:
    document = _document(volunteer)
    document.pop("totals", None)
    await tx.db[VOLUNTEERS].update_one(
        {"_id": volunteer.id}, {"$set": document}, session=tx.session
    )


async def get_erased_volunteer(
    db: Database, volunteer_id: str, tx: Tx | None = None
) -> ErasedVolunteer | None:
    document = await db[ERASED_VOLUNTEERS].find_one({"_id": volunteer_id}, session=_session(tx))
    return ErasedVolunteer.model_validate({**document, "id": document["_id"]}) if document else None


async def erase_volunteer(tx: Tx, erased: ErasedVolunteer, private_types: Sequence[str]) -> None:
    """Remove the volunteer's record, and every copy of their details units still holds:
    the private events in the outbox and the remembered answers to idempotent requests."""
    await tx.db[VOLUNTEERS].delete_one({"_id": erased.id}, session=tx.session)
    document = erased.model_dump()
    document["_id"] = document.pop("id")
    await tx.db[ERASED_VOLUNTEERS].replace_one(
        {"_id": erased.id}, document, upsert=True, session=tx.session
    )
    await tx.db[OUTBOX_COLLECTION].delete_many(
        {"type": {"$in": list(private_types)}, "event.subject": erased.id}, session=tx.session
    )
    await tx.db[IDEMPOTENCY_COLLECTION].delete_many(
        {"response.body.id": erased.id}, session=tx.session
    )


async def save_demand_details(tx: Tx, demand_id: str, details: Document) -> None:
    await tx.db[DEMAND_DETAILS].replace_one(
        {"_id": demand_id}, {**details, "_id": demand_id}, upsert=True, session=tx.session
    )


async def demand_details(db: Database, demand_ids: Sequence[str]) -> dict[str, Document]:
    cursor = db[DEMAND_DETAILS].find({"_id": {"$in": list(demand_ids)}})
    return {document["_id"]: document async for document in cursor}


async def serialise_claimant(tx: Tx, claimant: Claimant) -> None:
    """Write the claimant's registry document, so two transactions deciding claims for the
    same claimant conflict and one retries with the other's outcome in view: the rules that
    read a claimant's other claims (already-claimed, overlapping shifts, the weekly cap) then
    hold under concurrency too."""
    collection = UNITS if claimant.type == "unit" else VOLUNTEERS
    await tx.db[collection].update_one(
        {"_id": claimant.id}, {"$inc": {"claim_seq": 1}}, session=tx.session
    )


async def add_service(tx: Tx, claimant: Claimant, person_times: int, hours: float) -> None:
    collection = UNITS if claimant.type == "unit" else VOLUNTEERS
    await tx.db[collection].update_one(
        {"_id": claimant.id},
        {
            "$inc": {
                "totals.completed": 1,
                "totals.person_times": person_times,
                "totals.hours": hours,
            }
        },
        session=tx.session,
    )


# --- claims ---------------------------------------------------------------------------------


def _claim_document(claim: Claim) -> Document:
    document = _document(claim)
    document["claimant_key"] = claimant_key(claim.claimant)
    return document


async def insert_claim(tx: Tx, claim: Claim) -> None:
    await tx.db[CLAIMS].insert_one(_claim_document(claim), session=tx.session)


async def get_claim(db: Database, claim_id: str, tx: Tx | None = None) -> Claim | None:
    document = await db[CLAIMS].find_one({"_id": claim_id}, session=_session(tx))
    return _model(Claim, document) if document else None


async def holding_among(db: Database, claimant: Claimant, demand_ids: Sequence[str]) -> set[str]:
    """Which of these demands the claimant holds a claim on (accepted, waitlisted, checked in)."""
    cursor = db[CLAIMS].find(
        {
            "claimant_key": claimant_key(claimant),
            "demand_id": {"$in": list(demand_ids)},
            "status": {"$in": list(HOLDING_STATUSES)},
        },
        {"demand_id": 1},
    )
    return {document["demand_id"] async for document in cursor}


async def claims_on_demand(tx: Tx, demand_id: str, claimant: Claimant) -> list[Claim]:
    """Every claim, in any state, this claimant ever made on the demand (a handful at most:
    `MAX_CLAIMS_PER_DEMAND`): the one it holds, if any, and how many it made, in one read."""
    cursor = tx.db[CLAIMS].find(
        {"claimant_key": claimant_key(claimant), "demand_id": demand_id}, session=tx.session
    )
    return [_model(Claim, document) async for document in cursor]


async def claims_of(tx: Tx, claimant: Claimant, statuses: Sequence[ClaimStatus]) -> list[Claim]:
    query = {"claimant_key": claimant_key(claimant), "status": {"$in": list(statuses)}}
    cursor = tx.db[CLAIMS].find(query, session=tx.session)
    return [_model(Claim, document) async for document in cursor]


async def claims_on(tx: Tx, demand_id: str, statuses: Sequence[ClaimStatus]) -> list[Claim]:
    """A demand's claims in these states, oldest first (the waitlist's order)."""
    cursor = (
        tx.db[CLAIMS]
        .find({"demand_id": demand_id, "status": {"$in": list(statuses)}}, session=tx.session)
        .sort([("created_at", 1), ("_id", 1)])
    )
    return [_model(Claim, document) async for document in cursor]


async def move_claim(
    tx: Tx, claim: Claim, from_statuses: Sequence[ClaimStatus], changes: dict[str, Any]
) -> Claim:
    """Change a claim only if it is still in one of `from_statuses`; if it moved on since it
    was read, the transaction runs again from the start (`RetryTransaction`)."""
    document = await tx.db[CLAIMS].find_one_and_update(
        {"_id": claim.id, "status": {"$in": list(from_statuses)}},
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    if document is None:
        raise RetryTransaction(f"claim {claim.id} changed while we decided")
    return _model(Claim, document)


async def list_claims(db: Database, query: dict[str, Any], limit: int) -> list[Claim]:
    cursor = db[CLAIMS].find(query).sort([("created_at", 1), ("_id", 1)]).limit(limit)
    return [_model(Claim, document) async for document in cursor]


# --- eligibility overrides --------------------------------------------------------------------


def _override_key(demand_id: str, volunteer_id: str) -> str:
    return f"{demand_id}:{volunteer_id}"


async def save_override(tx: Tx, override: EligibilityOverride) -> None:
    """Grant (or grant again: one waiver per demand and volunteer, the latest reason)."""
    key = _override_key(override.demand_id, override.volunteer_id)
    await tx.db[ELIGIBILITY_OVERRIDES].replace_one(
        {"_id": key}, override.model_dump(), upsert=True, session=tx.session
    )


async def take_override(tx: Tx, demand_id: str, volunteer_id: str) -> EligibilityOverride | None:
    """Consume the waiver, if any: in the claim's transaction, so it lets one claim through."""
    document = await tx.db[ELIGIBILITY_OVERRIDES].find_one_and_delete(
        {"_id": _override_key(demand_id, volunteer_id)}, session=tx.session
    )
    if document is None:
        return None
    document.pop("_id")
    return EligibilityOverride.model_validate(document)


async def committed_near(
    db: Database, claimant: Claimant, window: Window, reach: timedelta, tx: Tx | None = None
) -> list[Claim]:
    """The claimant's committed claims (accepted, checked in, completed) within `reach` of
    the shift: all the volunteer's time rules can see of them (`rules.rules_reach`). A
    year of completed shifts stays in the store, unread by each new claim. In a claim's
    transaction (`tx`) or, for a preview, outside one."""
    query = {
        "claimant_key": claimant_key(claimant),
        "status": {"$in": list(COMMITTED_STATUSES)},
        "ends_at": {"$gt": window.starts_at - reach},
        "starts_at": {"$lt": window.ends_at + reach},
    }
    cursor = db[CLAIMS].find(query, session=_session(tx))
    return [_model(Claim, document) async for document in cursor]
