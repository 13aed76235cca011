"""Helpers for dispatch's tests: bodies, communities, the service's own database, units' events."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from shared.auth import Role, issue_token
from shared.events.catalogue import (
    ClaimAccepted,
    Claimant,
    ClaimCheckedIn,
    ClaimReleased,
    ClaimWithdrawn,
    DemandFilled,
    DemandReopened,
)
from shared.events.envelope import CloudEvent
from shared.settings import DEV_JWT_SECRET
from tests.conftest import bearer
from tests.support.events import event_of

PROBLEM = "application/problem+json"
COLLECTIONS = (
    "communities",
    "places",
    "demands",
    "claim_ledger",
    "outbox",
    "idempotency_keys",
    "timers",
)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def soon(seconds: float) -> datetime:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def demand_body(community_id: str, **overrides: Any) -> dict[str, Any]:
    """A demand whose deadlines lie days ahead unless overridden."""
    starts = soon(3 * 24 * 3600)
    body: dict[str, Any] = {
        "community_id": community_id,
        "kind": "staffing",
        "title": "North gate checkpoint",
        "location": {"grid": "G4", "address": "North gate"},
        "skills": ["Checkpoint", " first  AID", "checkpoint"],
        "slots": 4,
        "starts_at": iso(starts),
        "ends_at": iso(starts + timedelta(hours=12)),
        "priority": "urgent",
    }
    return body | overrides


async def register_community(
    client: httpx.AsyncClient,
    admin: str,
    community_id: str,
    *,
    street: str = "s-1",
    district: str = "d-1",
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "id": community_id,
        "name": community_id.title(),
        "street": street,
        "district": district,
        **extra,
    }
    response = await client.post("/v1/communities", json=body, headers=bearer(admin))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def post_demand(
    client: httpx.AsyncClient, secretary: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v1/demands", json=body, headers=bearer(secretary))
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"https://whistle.dev/problems/{slug}", problem
    assert problem["status"] == status
    return problem


class DispatchDb:
    """Dispatch's own database, read directly to check what was (not) stored."""

    def __init__(self, mongodb_url: str, db_prefix: str) -> None:
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
        self.db = self.client[f"{db_prefix}dispatch"]

    async def counts(self) -> dict[str, int]:
        return {name: await self.db[name].count_documents({}) for name in COLLECTIONS}

    async def outbox_types(self, subject: str) -> list[str]:
        documents = await self.db["outbox"].find({"event.subject": subject}).to_list(None)
        return [document["type"] for document in sorted(documents, key=lambda d: d["order"])]

    async def close(self) -> None:
        await self.client.close()


@asynccontextmanager
async def dispatch_db(mongodb_url: str, db_prefix: str) -> AsyncIterator[DispatchDb]:
    db = DispatchDb(mongodb_url, db_prefix)
    try:
        yield db
    finally:
        await db.close()


async def eventually[T](
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Poll `probe` until `done` holds (or the timeout passes: the last value is returned)."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not done(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        value = await probe()
    return value


async def demand_state(client: httpx.AsyncClient, token: str, demand_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/demands/{demand_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- units' events, as the units service publishes them ---------------------------------------


class UnitsFacts:
    """Builds units' events about one demand, with explicit event times for ordering tests."""

    def __init__(self, demand: dict[str, Any], start: datetime | None = None) -> None:
        self.demand_id: str = demand["id"]
        self.community_id: str = demand["community_id"]
        self.slots: int = demand["slots"]
        self.clock = start or datetime.now(UTC)

    def _tick(self) -> datetime:
        self.clock += timedelta(milliseconds=10)
        return self.clock

    def _event(self, data: Any) -> CloudEvent:
        event = event_of(data, subject=self.demand_id, source="/whistle/units", actor="units")
        return event.model_copy(update={"time": self._tick()})

    def _claim(self, claim_id: str, headcount: int) -> dict[str, Any]:
        return {
            "claim_id": claim_id,
            "demand_id": self.demand_id,
            "community_id": self.community_id,
            "claimant": Claimant(type="unit", id=f"unit-{claim_id}"),
            "headcount": headcount,
        }

    def accepted(self, claim_id: str, headcount: int, filled: int) -> CloudEvent:
        return self._event(
            ClaimAccepted(**self._claim(claim_id, headcount), filled=filled, slots=self.slots)
        )

    def withdrawn(self, claim_id: str, headcount: int, filled: int) -> CloudEvent:
        return self._event(
            ClaimWithdrawn(**self._claim(claim_id, headcount), filled=filled, slots=self.slots)
        )

    def released(self, claim_id: str, headcount: int) -> CloudEvent:
        return self._event(ClaimReleased(**self._claim(claim_id, headcount), reason="cancelled"))

    def checked_in(self, claim_id: str, headcount: int) -> CloudEvent:
        return self._event(
            ClaimCheckedIn(**self._claim(claim_id, headcount), checked_in_at=self._tick())
        )

    def filled(self, filled: int) -> CloudEvent:
        return self._event(
            DemandFilled(
                demand_id=self.demand_id,
                community_id=self.community_id,
                filled=filled,
                slots=self.slots,
            )
        )

    def reopened(self, filled: int) -> CloudEvent:
        return self._event(
            DemandReopened(
                demand_id=self.demand_id,
                community_id=self.community_id,
                filled=filled,
                slots=self.slots,
            )
        )


def sign(
    role: str,
    sub: str | None = None,
    *,
    community: str | None = None,
    unit: str | None = None,
    volunteer: str | None = None,
) -> str:
    """A token signed with the dev secret the test services use (usable in module fixtures)."""
    name = sub or f"{role}-{community or unit or volunteer or 'x'}"
    return issue_token(
        DEV_JWT_SECRET,
        sub=name,
        role=Role(role),
        community=community,
        unit=unit,
        volunteer=volunteer,
    )
