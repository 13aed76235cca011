"""Driving a running units service from tests: dispatch's events in, HTTP calls, the store."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from services.units.domain.model import Claim, ClaimStatus
from shared.clock import utcnow
from shared.events.catalogue import (
    Claimant,
    CommunityRegistered,
    DemandCancelled,
    DemandDetails,
    DemandPublished,
)
from tests.conftest import bearer
from tests.support.auth import make_token
from tests.support.events import EventCollector, event_of, publish

Json = dict[str, Any]


tok = make_token


ADMIN = tok("admin")


async def wait_until[T](
    probe: Callable[[], Awaitable[T]], ready: Callable[[T], bool], timeout: float = 15.0
) -> T:
    """Poll `probe` until `ready(result)`; returns the last result either way."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if ready(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


@dataclass
class Volunteer:
    id: str
    token: str


@dataclass
class Unit:
    id: str
    token: str


@dataclass
class UnitsWorld:
    """One running units service, its vhost and its database."""

    url: str
    rabbitmq_url: str
    mongodb_url: str
    db_name: str
    http: httpx.AsyncClient
    _mongo: AsyncMongoClient[Json] | None = None

    @classmethod
    @asynccontextmanager
    async def opened(
        cls, url: str, env: Mapping[str, str], **client: Any
    ) -> AsyncIterator["UnitsWorld"]:
        """The world of the units service at `url`, started with `env`; `client`: httpx
        options (a 15 s timeout unless given)."""
        async with httpx.AsyncClient(**{"timeout": 15, **client}) as http:
            world = cls(
                url=url,
                rabbitmq_url=env["RABBITMQ_URL"],
                mongodb_url=env["MONGODB_URL"],
                db_name=f"{env['WHISTLE_DB_PREFIX']}units",
                http=http,
            )
            try:
                yield world
            finally:
                await world.close()

    # --- dispatch's side, as events --------------------------------------------------------

    async def community(
        self,
        community_id: str | None = None,
        street: str = "s-1",
        district: str = "d-1",
        **limits: Any,
    ) -> str:
        """`limits`: the community's fatigue limits (`max_hours_per_day`...), else defaults."""
        community_id = community_id or f"c-{uuid.uuid4().hex[:8]}"
        data = CommunityRegistered(
            community_id=community_id,
            name=community_id,
            street=street,
            district=district,
            **limits,
        )
        await publish(self.rabbitmq_url, event_of(data, subject=community_id))
        known = await wait_until(
            lambda: self.http.get(
                f"{self.url}/v1/communities/{community_id}", headers=bearer(ADMIN)
            ),
            lambda response: response.status_code == 200,
        )
        assert known.status_code == 200, known.text
        return community_id

    async def demand(
        self,
        community_id: str,
        *,
        slots: int = 5,
        skills: tuple[str, ...] = (),
        starts_at: datetime | None = None,
        hours: float = 4,
        priority: str = "urgent",
        fill_by: datetime | None = None,
        ends_at: datetime | None = None,
        street: str = "s-1",
        demand_id: str | None = None,
        **details: Any,
    ) -> str:
        """`details`: more of `demand.published`'s fields (level...); a `description` or an
        exact `location` travel as dispatch sends them: in the private `demand.details`."""
        demand_id = demand_id or f"dem_{uuid.uuid4().hex[:12]}"
        description = details.pop("description", None)
        location = details.pop("location", None)
        starts = starts_at or utcnow() + timedelta(days=3)
        data = DemandPublished.model_validate(
            {
                "demand_id": demand_id,
                "community_id": community_id,
                "street": street,
                "district": "d-1",
                "kind": "staffing",
                "title": "North gate checkpoint",
                "skills": skills,
                "slots": slots,
                "starts_at": starts,
                "ends_at": ends_at or starts + timedelta(hours=hours),
                "fill_by": fill_by or starts,
                "priority": priority,
                "created_by": "secretary",
                "location": {"grid": (location or {}).get("grid")},
                **details,
            }
        )
        await publish(self.rabbitmq_url, event_of(data, subject=demand_id))
        if description is not None or location is not None:
            private = DemandDetails.model_validate(
                {
                    "demand_id": demand_id,
                    "community_id": community_id,
                    "description": description,
                    "location": location or {},
                }
            )
            await publish(self.rabbitmq_url, event_of(private, subject=demand_id))
        await self.wait_known(demand_id)
        return demand_id

    async def wait_known(self, demand_id: str) -> None:
        known = await wait_until(
            lambda: self.code_response(demand_id, ADMIN),
            lambda response: response.status_code == 200,
        )
        assert known.status_code == 200, known.text

    async def cancel(self, demand_id: str, community_id: str, reason: str = "rain") -> None:
        data = DemandCancelled(demand_id=demand_id, community_id=community_id, reason=reason)
        await publish(self.rabbitmq_url, event_of(data, subject=demand_id))

    # --- the registry ----------------------------------------------------------------------

    async def volunteer(
        self,
        community_id: str,
        skills: tuple[str, ...] = (),
        max_hours: float = 40,
        **record: Any,
    ) -> Volunteer:
        """`record`: more of the registration (own fatigue limits, birth_year...)."""
        response = await self.http.post(
            f"{self.url}/v1/volunteers",
            headers=bearer(tok("secretary", community=community_id)),
            json={
                "name": "Li Wei",
                "community_id": community_id,
                "skills": list(skills),
                "max_hours_per_week": max_hours,
                "contact": {"phone": "+86 138 0000 0000"},
                **record,
            },
        )
        assert response.status_code == 201, response.text
        volunteer_id = response.json()["id"]
        return Volunteer(volunteer_id, tok("volunteer", volunteer=volunteer_id))

    async def unit(self, communities: list[str], skills: tuple[str, ...] = ()) -> Unit:
        response = await self.http.post(
            f"{self.url}/v1/units",
            headers=bearer(ADMIN),
            json={
                "name": "Street Office",
                "kind": "department",
                "communities": communities,
                "skills": list(skills),
                "contact": {"email": "office@example.org"},
            },
        )
        assert response.status_code == 201, response.text
        unit_id = response.json()["id"]
        return Unit(unit_id, tok("unit", unit=unit_id))

    # --- claims ----------------------------------------------------------------------------

    async def claim(
        self, token: str, demand_id: str, url: str | None = None, **body: Any
    ) -> httpx.Response:
        return await self.http.post(
            f"{url or self.url}/v1/demands/{demand_id}/claims", headers=bearer(token), json=body
        )

    async def act(
        self, token: str, claim_id: str, action: str, body: Json | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.url}/v1/claims/{claim_id}/{action}", headers=bearer(token), json=body
        )

    async def get_claim(self, claim_id: str) -> Json:
        response = await self.http.get(f"{self.url}/v1/claims/{claim_id}", headers=bearer(ADMIN))
        assert response.status_code == 200, response.text
        body: Json = response.json()
        return body

    async def code_response(self, demand_id: str, token: str) -> httpx.Response:
        return await self.http.get(
            f"{self.url}/v1/demands/{demand_id}/check-in-code", headers=bearer(token)
        )

    # --- the store -------------------------------------------------------------------------

    @asynccontextmanager
    async def database(self) -> AsyncIterator[Any]:
        if self._mongo is None:
            self._mongo = AsyncMongoClient(self.mongodb_url, tz_aware=True)
        yield self._mongo[self.db_name]

    async def close(self) -> None:
        if self._mongo is not None:
            await self._mongo.close()
            self._mongo = None

    async def counts(self) -> tuple[int, int]:
        """(claims stored, events in the outbox): a refusal must change neither."""
        async with self.database() as db:
            return (
                await db["claims"].count_documents({}),
                await db["outbox"].count_documents({}),
            )

    async def outbox_flushed(self) -> None:
        """Wait until every event stored so far is published (confirmed, so already routed)."""

        async def pending() -> int:
            async with self.database() as db:
                count: int = await db["outbox"].count_documents({"status": "pending"})
                return count

        assert await wait_until(pending, lambda count: count == 0) == 0

    async def demand_document(self, demand_id: str) -> Json:
        async with self.database() as db:
            document: Json | None = await db["demands"].find_one({"_id": demand_id})
        assert document is not None
        return document


def problem_slug(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    kind: str = response.json()["type"]
    return kind.rsplit("/", 1)[-1]


def distinct(events: list[Json]) -> list[Json]:
    """Events once each: delivery is at-least-once, so a republished event may arrive twice."""
    return list({event["id"]: event for event in events}.values())


async def wait_distinct(
    seen: EventCollector, event_type: str, count: int = 1, timeout: float = 10.0
) -> list[Json]:
    """Wait until `count` distinct events of the type arrived; returns them all, once each."""
    deadline = time.monotonic() + timeout
    while True:
        got = distinct(seen.of_type(event_type))
        remaining = deadline - time.monotonic()
        if len(got) >= count or remaining <= 0:
            return got
        await seen.wait_for(event_type, len(seen.of_type(event_type)) + 1, remaining)


def committed_shift(
    start: datetime, length: timedelta, name: str, status: ClaimStatus = "accepted"
) -> Claim:
    """One of volunteer `vol_1`'s claims, for the time rules: its window and its state."""
    return Claim(
        id=f"clm_{name}",
        demand_id=f"dem_{name}",
        community_id="c-1",
        claimant=Claimant(type="volunteer", id="vol_1"),
        headcount=1,
        status=status,
        starts_at=start.astimezone(UTC),
        ends_at=(start + length).astimezone(UTC),
        created_at=start.astimezone(UTC),
        created_by="vol_1",
    )
