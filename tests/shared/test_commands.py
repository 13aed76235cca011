"""One way to run a command: `execute` with idempotency, the request's cause, serialisation,
the stored response; and the refusal table that answers a domain exception with its problem."""

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pymongo import AsyncMongoClient

from shared.auth import Principal, Role
from shared.events.catalogue import CommunityRegistered
from shared.events.envelope import CloudEvent
from shared.http.commands import KeyedGate, execute
from shared.http.idempotency_keys import IdempotencyKeys, StoredResponse
from shared.http.problems import (
    PROBLEM_MEDIA_TYPE,
    Refusal,
    RefusalTable,
    install_problem_handlers,
    install_refusals,
    not_found,
)
from shared.store.mongo import Database, Document
from shared.store.outbox import OUTBOX_COLLECTION
from shared.store.unit_of_work import Tx, UnitOfWork

pytestmark = pytest.mark.broker


class NameTaken(Exception):
    """A domain refusal: no HTTP in it, only what the problem needs to say."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a community named '{name}' exists")
        self.errors = [{"loc": ["body", "name"], "msg": "taken", "type": "id_taken"}]


REFUSALS: RefusalTable = {NameTaken: Refusal(409, "name-taken", "Name taken")}


class CommunityOut(BaseModel):
    id: str
    name: str


@dataclass
class Runtime:
    name: str
    uow: UnitOfWork
    idempotency: IdempotencyKeys


PRINCIPAL = Principal(sub="admin-7", role=Role.ADMIN)


def _app(mongo_client: AsyncMongoClient[Document], db: Database) -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    install_problem_handlers(app)
    install_refusals(app, REFUSALS)
    runtime = Runtime(
        "dispatch", UnitOfWork(mongo_client, db, service="dispatch"), IdempotencyKeys(db)
    )
    inside: list[int] = []  # how many commands were running at each entry
    running = 0

    async def register(tx: Tx, body: dict[str, Any]) -> CommunityOut:
        nonlocal running
        running += 1
        inside.append(running)
        try:
            await asyncio.sleep(0.02)  # long enough for a concurrent command to come in
            if await tx.db.communities.find_one({"name": body["name"]}, session=tx.session):
                raise NameTaken(body["name"])
            await tx.db.communities.insert_one(
                {"_id": body["id"], "name": body["name"]}, session=tx.session
            )
            tx.emit(
                CommunityRegistered(
                    community_id=body["id"], name=body["name"], street="s", district="d"
                ),
                subject=body["id"],
            )
            return CommunityOut(id=body["id"], name=body["name"])
        finally:
            running -= 1

    @app.post("/communities", status_code=201)
    async def create(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        return await execute(
            runtime,
            request,
            PRINCIPAL,
            lambda tx: register(tx, body),
            present=lambda out: StoredResponse.of(out, 201, {"Location": f"/communities/{out.id}"}),
            serialise_on=body.get("lane"),
        )

    return app, inside


async def _post(app: FastAPI, *bodies: tuple[dict[str, Any], str | None]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/communities",
                    json=body,
                    headers={"Idempotency-Key": key} if key is not None else {},
                )
                for body, key in bodies
            )
        )


async def test_a_command_runs_once_per_key_and_its_event_names_the_request(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    app, _ = _app(mongo_client, db)
    body = {"id": "c-1", "name": "North"}
    responses = await _post(app, *[(body, "k-1")] * 3)
    # Whichever came first created it; the others are its answer, replayed.
    replayed = [r.headers.get("idempotent-replayed") == "true" for r in responses]
    assert sorted(replayed) == [False, True, True]
    for response in responses:
        assert response.status_code == 201
        assert response.headers["location"] == "/communities/c-1"
        assert response.json() == responses[0].json()
    assert await db.communities.count_documents({}) == 1
    [document] = await db[OUTBOX_COLLECTION].find({}).to_list(None)
    event = CloudEvent.model_validate(document["event"])
    assert (event.source, event.actor, event.subject) == ("/whistle/dispatch", "admin-7", "c-1")
    assert event.causationid.startswith("req")


async def test_a_refusal_answers_its_problem_changes_nothing_and_frees_the_key(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    app, _ = _app(mongo_client, db)
    [created] = await _post(app, ({"id": "c-1", "name": "North"}, None))
    assert created.status_code == 201
    [refused] = await _post(app, ({"id": "c-2", "name": "North"}, "k-2"))
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert refused.json() == {
        "type": "https://whistle.dev/problems/name-taken",
        "title": "Name taken",
        "status": 409,
        "detail": "a community named 'North' exists",
        "instance": "/communities",
        "errors": [{"loc": ["body", "name"], "msg": "taken", "type": "id_taken"}],
    }
    assert await db.communities.count_documents({}) == 1
    assert await db[OUTBOX_COLLECTION].count_documents({}) == 1
    # The key was dropped with the refusal: the corrected request may use it.
    [corrected] = await _post(app, ({"id": "c-2", "name": "South"}, "k-2"))
    assert corrected.status_code == 201


async def test_commands_on_one_key_run_one_at_a_time(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    app, inside = _app(mongo_client, db)
    responses = await _post(
        app, *[({"id": f"c-{n}", "name": f"N{n}", "lane": "hot"}, None) for n in range(4)]
    )
    assert [response.status_code for response in responses] == [201] * 4
    assert inside == [1, 1, 1, 1]


@pytest.mark.unit
async def test_the_gate_admits_one_holder_per_key_in_arrival_order() -> None:
    gate = KeyedGate()
    order: list[str] = []
    release = asyncio.Event()

    async def hold(name: str, key: str) -> None:
        async with gate.hold(key):
            order.append(f"{name} in")
            if name == "first":
                await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(hold("first", "d_1"))
    await asyncio.sleep(0)
    second = asyncio.create_task(hold("second", "d_1"))
    other = asyncio.create_task(hold("other", "d_2"))
    await asyncio.sleep(0.01)
    assert order == ["first in", "other in", "other out"]  # d_2 never waited for d_1
    release.set()
    await asyncio.gather(first, second, other)
    assert order[3:] == ["first out", "second in", "second out"]
    assert len(gate) == 0  # nobody waits: the keys are forgotten


@pytest.mark.unit
def test_not_found_is_the_one_404() -> None:
    problem = not_found("demand", "dem_1")
    assert (problem.status, problem.slug, problem.detail) == (404, "not-found", "no demand 'dem_1'")
