"""`Idempotency-Key` under concurrency: one creation, every repeat gets the first response."""

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo import AsyncMongoClient

from shared.auth import Principal, Role
from shared.http.commands import execute
from shared.http.idempotency_keys import IdempotencyKeys, StoredResponse
from shared.http.problems import ProblemError, install_problem_handlers
from shared.ids import new_id
from shared.store.mongo import Database, Document
from shared.store.outbox import OUTBOX_COLLECTION
from shared.store.unit_of_work import Tx, UnitOfWork

pytestmark = pytest.mark.broker

TESTER = Principal(sub="tester", role=Role.ADMIN)


@dataclass(frozen=True)
class _Runtime:
    """What `execute` needs of a service."""

    name: str
    uow: UnitOfWork
    idempotency: IdempotencyKeys


def _app(mongo_client: AsyncMongoClient[Document], db: Database) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    runtime = _Runtime("tests", UnitOfWork(mongo_client, db), IdempotencyKeys(db))

    @app.post("/things")
    async def create_thing(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()

        async def create(tx: Tx) -> StoredResponse:
            if body.get("name") == "bad":
                raise ProblemError(422, "validation-error", "Invalid", "bad name")
            thing = {"_id": new_id("th"), "name": body["name"]}
            await tx.db.things.insert_one(thing, session=tx.session)
            await asyncio.sleep(0.05)  # hold the reservation while the repeats arrive
            return StoredResponse(
                201,
                {"id": thing["_id"], "name": thing["name"]},
                {"Location": f"/things/{thing['_id']}"},
            )

        return await execute(runtime, request, TESTER, create, present=lambda stored: stored)

    return app


async def _post_all(
    app: FastAPI, requests: list[tuple[dict[str, Any], str]]
) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await asyncio.gather(
            *(
                client.post("/things", json=body, headers={"Idempotency-Key": key})
                for body, key in requests
            )
        )


async def test_concurrent_repeats_create_once_and_replay_the_first_response(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    app = _app(mongo_client, db)
    responses = await _post_all(app, [({"name": "tent"}, "key-1")] * 5)
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    replayed = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == 4
    assert await db.things.count_documents({}) == 1


async def test_same_key_with_another_body_is_refused(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    app = _app(mongo_client, db)
    (first,) = await _post_all(app, [({"name": "tent"}, "key-2")])
    (second,) = await _post_all(app, [({"name": "stove"}, "key-2")])
    assert first.status_code == 201
    assert second.status_code == 422
    assert second.json()["type"] == "https://whistle.dev/problems/idempotency-key-reused"
    assert await db.things.count_documents({}) == 1


async def test_a_failed_request_releases_its_key(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    app = _app(mongo_client, db)
    (failed,) = await _post_all(app, [({"name": "bad"}, "key-3")])
    (fixed,) = await _post_all(app, [({"name": "good"}, "key-3")])
    assert failed.status_code == 422
    assert fixed.status_code == 201
    assert fixed.headers.get("idempotent-replayed") is None
    assert await db.things.count_documents({}) == 1
    assert await db[OUTBOX_COLLECTION].count_documents({}) == 0


async def test_distinct_keys_create_distinct_things(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    app = _app(mongo_client, db)
    responses = await _post_all(app, [({"name": "tent"}, f"key-{n}") for n in range(4)])
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 4
    assert await db.things.count_documents({}) == 4
