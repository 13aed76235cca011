"""Dispatch's MongoDB collections: communities and demands."""

from typing import Any

from pymongo.errors import DuplicateKeyError

from services.dispatch.domain.model import Community, Demand
from shared.store.mongo import Database
from shared.store.unit_of_work import Tx

COMMUNITIES = "communities"
DEMANDS = "demands"


class AlreadyExists(Exception):
    pass


async def ensure_indexes(db: Database) -> None:
    await db[DEMANDS].create_index([("community_id", 1), ("_id", 1)])
    await db[DEMANDS].create_index([("status", 1), ("_id", 1)])


def _to_document(model: Community | Demand) -> dict[str, Any]:
    document = model.model_dump()
    document["_id"] = document.pop("id")
    return document


def _from_document[M: (Community, Demand)](model: type[M], document: dict[str, Any]) -> M:
    document = dict(document)
    document["id"] = document.pop("_id")
    return model.model_validate(document)


async def insert_community(tx: Tx, community: Community) -> None:
    try:
        await tx.db[COMMUNITIES].insert_one(_to_document(community), session=tx.session)
    except DuplicateKeyError:
        raise AlreadyExists(community.id) from None


async def get_community(db: Database, community_id: str, tx: Tx | None = None) -> Community | None:
    session = tx.session if tx else None
    document = await db[COMMUNITIES].find_one({"_id": community_id}, session=session)
    return _from_document(Community, document) if document else None


async def insert_demand(tx: Tx, demand: Demand) -> None:
    document = _to_document(demand)
    document["location"] = demand.location.model_dump()
    await tx.db[DEMANDS].insert_one(document, session=tx.session)


async def get_demand(db: Database, demand_id: str) -> Demand | None:
    document = await db[DEMANDS].find_one({"_id": demand_id})
    return _from_document(Demand, document) if document else None
