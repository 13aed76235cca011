"""Events as units and dispatch publish them, and a client for notify's inboxes."""

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from shared.events.catalogue import (
    ClaimAccepted,
    ClaimData,
    ClaimReleased,
    CommunityRegistered,
    Contact,
    DemandCancelled,
    DemandEscalated,
    DemandFilled,
    DemandPublished,
    UnitDetails,
    UnitRegistered,
    VolunteerDetails,
    VolunteerErased,
    VolunteerRegistered,
)
from shared.events.envelope import CloudEvent
from tests.conftest import bearer
from tests.support.events import event_of

FAR = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def community(community_id: str, street: str = "s-1", district: str = "d-1") -> CloudEvent:
    data = CommunityRegistered(
        community_id=community_id, name=community_id, street=street, district=district
    )
    return event_of(data, subject=community_id, source="/whistle/dispatch")


# The secret units would have generated for each test receiver.
WEBHOOK_SECRET = "whsec_notify-tests-receiver-secret"


def unit(unit_id: str, communities: list[str], skills: Sequence[str] = ()) -> CloudEvent:
    data = UnitRegistered(
        unit_id=unit_id,
        name=unit_id,
        kind="department",
        communities=tuple(communities),
        skills=tuple(skills),
    )
    return event_of(data, subject=unit_id, source="/whistle/units")


def unit_details(
    unit_id: str,
    *,
    webhook_url: str | None = None,
    email: str | None = None,
    secret: str | None = WEBHOOK_SECRET,
    version: int = 1,
) -> CloudEvent:
    """How to reach the unit, as units sends it on `whistle.private`."""
    data = UnitDetails(
        unit_id=unit_id,
        version=version,
        contact=Contact(webhook_url=webhook_url, email=email),
        webhook_secret=secret if webhook_url else None,
    )
    return event_of(data, subject=unit_id, source="/whistle/units")


def reachable_unit(
    unit_id: str,
    communities: list[str],
    skills: Sequence[str] = (),
    *,
    webhook_url: str | None = None,
    email: str | None = None,
) -> list[CloudEvent]:
    """A unit's registration as units publishes it: the private details, then the record."""
    return [
        unit_details(unit_id, webhook_url=webhook_url, email=email),
        unit(unit_id, communities, skills),
    ]


def volunteer(volunteer_id: str, community_id: str, skills: Sequence[str] = ()) -> CloudEvent:
    data = VolunteerRegistered(
        volunteer_id=volunteer_id, community_id=community_id, skills=tuple(skills)
    )
    return event_of(data, subject=volunteer_id, source="/whistle/units")


def volunteer_details(
    volunteer_id: str,
    community_id: str,
    *,
    name: str = "a volunteer",
    webhook_url: str | None = None,
    email: str | None = None,
    version: int = 1,
) -> CloudEvent:
    data = VolunteerDetails(
        volunteer_id=volunteer_id,
        community_id=community_id,
        version=version,
        name=name,
        contact=Contact(webhook_url=webhook_url, email=email),
        webhook_secret=WEBHOOK_SECRET if webhook_url else None,
    )
    return event_of(data, subject=volunteer_id, source="/whistle/units")


def erased(volunteer_id: str, community_id: str) -> CloudEvent:
    data = VolunteerErased(volunteer_id=volunteer_id, community_id=community_id)
    return event_of(data, subject=volunteer_id, source="/whistle/units")


def published(
    demand_id: str,
    community_id: str,
    skills: Sequence[str] = (),
    *,
    priority: str = "routine",
    slots: int = 2,
    starts_at: datetime = FAR,
    fill_by: datetime | None = None,
    committed_unit_id: str | None = None,
) -> CloudEvent:
    data = DemandPublished.model_validate(
        {
            "demand_id": demand_id,
            "community_id": community_id,
            "street": "s-1",
            "district": "d-1",
            "kind": "staffing",
            "title": f"Checkpoint {demand_id}",
            "skills": skills,
            "slots": slots,
            "starts_at": starts_at,
            "ends_at": starts_at + timedelta(hours=4),
            "fill_by": fill_by or starts_at,
            "priority": priority,
            "created_by": "secretary",
            "committed_unit_id": committed_unit_id,
            "roster_id": "ros_1" if committed_unit_id else None,
        }
    )
    return event_of(data, subject=demand_id, source="/whistle/dispatch")


def claim(
    model: type[ClaimData],
    demand_id: str,
    community_id: str,
    who: tuple[str, str],
    *,
    claim_id: str | None = None,
    **extra: Any,
) -> CloudEvent:
    if model in (ClaimAccepted,) and "filled" not in extra:
        extra |= {"filled": 1, "slots": 2}
    if model is ClaimReleased and "reason" not in extra:
        extra["reason"] = "demand cancelled"
    data = model.model_validate(
        {
            "claim_id": claim_id or uid("clm"),
            "demand_id": demand_id,
            "community_id": community_id,
            "claimant": {"type": who[0], "id": who[1]},
            "headcount": 1,
            **extra,
        }
    )
    return event_of(data, subject=demand_id, source="/whistle/units")


def filled(demand_id: str, community_id: str, slots: int = 2) -> CloudEvent:
    data = DemandFilled(demand_id=demand_id, community_id=community_id, filled=slots, slots=slots)
    return event_of(data, subject=demand_id, source="/whistle/units")


def escalated(demand_id: str, community_id: str, to_level: str, target: str) -> CloudEvent:
    data = DemandEscalated.model_validate(
        {
            "demand_id": demand_id,
            "community_id": community_id,
            "from_level": "community" if to_level == "street" else "street",
            "to_level": to_level,
            "target": target,
            "filled": 0,
            "slots": 2,
        }
    )
    return event_of(data, subject=demand_id, source="/whistle/dispatch")


def cancelled(demand_id: str, community_id: str) -> CloudEvent:
    data = DemandCancelled(demand_id=demand_id, community_id=community_id, reason="rain")
    return event_of(data, subject=demand_id, source="/whistle/dispatch")


class Notify:
    """A client for one running notify: inboxes by token, and a look at what it processed."""

    def __init__(self, url: str, mongodb_url: str, db_prefix: str, token: Callable[..., str]):
        self.url = url
        self._token = token
        self._mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
        self.db = self._mongo[f"{db_prefix}notify"]

    def token_for(self, owner: str) -> str:
        kind, _, ident = owner.partition(":")
        if kind == "unit":
            return self._token("unit", unit=ident)
        if kind == "volunteer":
            return self._token("volunteer", volunteer=ident)
        return self._token("secretary", community=ident)  # office:<community/street/district>

    async def inbox(self, owner: str, **params: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.get(
                "/v1/inbox", params=params, headers=bearer(self.token_for(owner))
            )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def kinds(self, owner: str) -> list[str]:
        return [item["kind"] for item in (await self.inbox(owner, limit=200))["items"]]

    async def wait_inbox(
        self, owner: str, count: int, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            items: list[dict[str, Any]] = (await self.inbox(owner, limit=200))["items"]
            if len(items) >= count or time.monotonic() > deadline:
                return items
            await _pause()

    async def processed(self, *events: CloudEvent, timeout: float = 10.0) -> None:
        """Wait until notify has committed its handling of each event."""
        wanted = {f"notify:{event.id}": event.type for event in events}
        deadline = time.monotonic() + timeout
        while True:
            cursor = self.db["processed_events"].find({"_id": {"$in": list(wanted)}}, {"_id": 1})
            found = {document["_id"] async for document in cursor}
            if len(found) == len(wanted):
                return
            missing = sorted(kind for key, kind in wanted.items() if key not in found)
            assert time.monotonic() < deadline, f"notify has not processed {missing}"
            await _pause()

    async def close(self) -> None:
        await self._mongo.close()


async def _pause() -> None:
    await asyncio.sleep(0.05)
