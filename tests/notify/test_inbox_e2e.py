"""The inbox over HTTP: paged newest first, read/unread, live over SSE with resume; re-alerts."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.clock import utcnow
from shared.events.catalogue import ClaimAccepted
from tests.conftest import bearer
from tests.notify import scenario as s
from tests.notify.receivers import eventually
from tests.notify.scenario import Notify
from tests.notify.sse import open_stream
from tests.support.events import publish

pytestmark = pytest.mark.e2e


async def _whistles(notify: Notify, rabbitmq: str, community: str, count: int) -> list[str]:
    demands = [s.published(s.uid("dem"), community) for _ in range(count)]
    await publish(rabbitmq, *demands)
    await notify.processed(*demands)
    return [str(d.data["demand_id"]) for d in demands]


async def test_the_inbox_pages_newest_first_and_marks_read(notify: Notify, rabbitmq: str) -> None:
    c, person = s.uid("c"), s.uid("v")
    registry = [s.community(c), s.volunteer(person, c)]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)
    await _whistles(notify, rabbitmq, c, 3)
    owner = f"volunteer:{person}"

    first = await notify.inbox(owner, limit=2)
    assert first["unread"] == 3
    seqs = [item["seq"] for item in first["items"]]
    assert seqs == [3, 2]
    assert first["next_after"] == 2
    rest = await notify.inbox(owner, limit=2, after=first["next_after"])
    assert [item["seq"] for item in rest["items"]] == [1]
    assert rest["next_after"] is None

    oldest = rest["items"][0]
    auth = bearer(notify.token_for(owner))
    async with httpx.AsyncClient(base_url=notify.url) as client:
        read = await client.post(f"/v1/inbox/{oldest['id']}/read", headers=auth)
        assert read.status_code == 200, read.text
        assert read.json()["read"] is True
        assert read.json()["read_at"] is not None
        # Someone else's notification is not theirs to see or mark.
        other = bearer(notify.token_for(f"volunteer:{s.uid('v')}"))
        assert (
            await client.post(f"/v1/inbox/{oldest['id']}/read", headers=other)
        ).status_code == 404
        assert (await client.get("/v1/inbox")).status_code == 401
    unread = await notify.inbox(owner, unread="true")
    assert unread["unread"] == 2
    assert oldest["id"] not in [item["id"] for item in unread["items"]]

    async with httpx.AsyncClient(base_url=notify.url) as client:
        marked = await client.post("/v1/inbox/read", json={"up_to": 2}, headers=auth)
        assert marked.status_code == 200, marked.text
        assert marked.json() == {"marked": 1, "unread": 1}
        refused = await client.post("/v1/inbox/read", json={"up_to": 0}, headers=auth)
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
    assert [item["seq"] for item in (await notify.inbox(owner, unread="true"))["items"]] == [3]


async def test_roles_without_an_inbox_and_bad_input_are_refused(
    notify: Notify, token: Callable[..., str]
) -> None:
    async with httpx.AsyncClient(base_url=notify.url) as client:
        refused = await client.get("/v1/inbox", headers=bearer(token("auditor")))
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        bad = await client.get(
            "/v1/inbox/stream",
            headers={**bearer(token("unit", unit="u1")), "Last-Event-ID": "not-a-number"},
        )
        assert bad.status_code == 400
        assert bad.json()["type"].endswith("/invalid-last-event-id")
        assert (
            await client.get("/v1/inbox?limit=0", headers=bearer(token("unit", unit="u1")))
        ).status_code == 422
        assert (await client.get("/v1/inbox/stream")).status_code == 401


async def test_integers_beyond_what_mongodb_stores_are_a_422_not_a_500(
    notify: Notify, token: Callable[..., str]
) -> None:
    auth = bearer(token("unit", unit="u-bounds"))
    async with httpx.AsyncClient(base_url=notify.url) as client:
        huge = await client.get(
            "/v1/inbox", params={"after": "104197897407664914432"}, headers=auth
        )
        assert huge.status_code == 422, huge.text
        marked = await client.post("/v1/inbox/read", json={"up_to": 2**63}, headers=auth)
        assert marked.status_code == 422, marked.text
        assert marked.headers["content-type"] == "application/problem+json"
        largest = await client.post("/v1/inbox/read", json={"up_to": 2**63 - 1}, headers=auth)
        assert largest.status_code == 200, largest.text


async def test_the_stream_delivers_live_and_resumes_after_last_event_id(
    notify: Notify, rabbitmq: str
) -> None:
    c, person = s.uid("c"), s.uid("v")
    registry = [s.community(c), s.volunteer(person, c)]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)
    owner = f"volunteer:{person}"
    url = f"{notify.url}/v1/inbox/stream"
    auth = bearer(notify.token_for(owner))

    async with open_stream(url, headers=auth) as live:
        assert live.status == 200
        [first] = await _whistles(notify, rabbitmq, c, 1)
        assert await eventually(lambda: live.notifications, timeout=5)
    [seen] = live.notifications
    assert seen["demand_id"] == first
    last_id = live.events[-1]["id"]
    assert last_id == str(seen["seq"])

    missed = await _whistles(notify, rabbitmq, c, 2)  # while nobody was listening

    # A browser's EventSource reconnects with Last-Event-ID (and may only pass its token in
    # the query string): it gets what it missed, in order, and nothing twice.
    token = notify.token_for(owner)
    async with open_stream(
        url, headers={"Last-Event-ID": last_id}, params={"access_token": token}
    ) as resumed:
        assert resumed.status == 200
        assert await eventually(lambda: len(resumed.notifications) >= 2, timeout=5)
        [later] = await _whistles(notify, rabbitmq, c, 1)
        assert await eventually(lambda: len(resumed.notifications) >= 3, timeout=5)
        assert await eventually(lambda: resumed.comments > 0, timeout=5)  # keep-alive pings
    assert [n["demand_id"] for n in resumed.notifications] == [*missed, later]
    assert [int(e["id"]) for e in resumed.events] == [
        int(last_id) + 1,
        int(last_id) + 2,
        int(last_id) + 3,
    ]


async def test_an_unfilled_demand_re_alerts_matching_volunteers_once_at_half_time(
    notify: Notify, rabbitmq: str
) -> None:
    c = s.uid("c")
    medic, cook, answered, newcomer = s.uid("v"), s.uid("v"), s.uid("v"), s.uid("v")
    registry = [
        s.community(c),
        s.volunteer(medic, c, ["first aid"]),
        s.volunteer(cook, c, ["cooking"]),
        s.volunteer(answered, c, ["first aid"]),
    ]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)

    now = utcnow()
    starts = now + timedelta(hours=10)
    taken, open_one = s.uid("dem"), s.uid("dem")
    # Half-way points: `taken` at +2 s, `open_one` at +3 s.
    whistles = [
        s.published(taken, c, ["first aid"], starts_at=starts, fill_by=now + timedelta(seconds=4)),
        s.published(
            open_one, c, ["first aid"], starts_at=starts, fill_by=now + timedelta(seconds=6)
        ),
    ]
    await publish(rabbitmq, *whistles)
    await notify.processed(*whistles)
    joined = s.volunteer(newcomer, c, ["first aid"])
    follow_up = [
        s.filled(taken, c),
        s.claim(ClaimAccepted, open_one, c, ("volunteer", answered)),
        joined,
    ]
    await publish(rabbitmq, *follow_up)
    await notify.processed(*follow_up)

    def of(demand: str, items: list[dict[str, Any]]) -> list[str]:
        return sorted(item["kind"] for item in items if item["demand_id"] == demand)

    medic_items = await notify.wait_inbox(f"volunteer:{medic}", 3, timeout=10)
    assert of(open_one, medic_items) == ["demand.published", "demand.realert"]
    taken_timer = await notify.db["timers"].find_one({"_id": f"realert:{taken}"})
    assert taken_timer is not None
    assert taken_timer["state"] == "fired"  # it fired before open_one's
    assert of(taken, medic_items) == ["demand.published"]  # filled in time: no re-alert
    # Not matching, already answered, or first heard of it now: as the rules say.
    assert of(open_one, (await notify.inbox(f"volunteer:{cook}"))["items"]) == []
    assert of(open_one, (await notify.inbox(f"volunteer:{answered}"))["items"]) == [
        "claim.accepted",
        "demand.published",
    ]
    assert of(open_one, (await notify.inbox(f"volunteer:{newcomer}"))["items"]) == [
        "demand.realert"
    ]
    alerts = await notify.db["alerts"].find_one({"_id": f"{open_one}:{medic}"})
    assert alerts is not None
    assert alerts["count"] == 2
