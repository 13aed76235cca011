"""The inbox over HTTP: paged newest first, read/unread, live over SSE with resume; re-alerts."""

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.auth import Role, issue_token
from shared.clock import utcnow
from shared.events.catalogue import ClaimAccepted
from shared.settings import DEV_JWT_SECRET
from tests.conftest import bearer
from tests.notify import scenario as s
from tests.notify.receivers import eventually
from tests.notify.scenario import Notify
from tests.notify.sse import Stream, open_stream
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

    # A browser's EventSource reconnects with Last-Event-ID (and cannot set a header: it
    # opens the stream with a single-use ticket): it gets what it missed, in order, once.
    ticket = await _ticket(notify, owner)
    async with open_stream(
        url, headers={"Last-Event-ID": last_id}, params={"ticket": ticket}
    ) as resumed:
        assert resumed.status == 200
        assert await eventually(lambda: len(resumed.notifications) >= 2, timeout=5)
        [later] = await _whistles(notify, rabbitmq, c, 1)
        assert await eventually(lambda: len(resumed.notifications) >= 3, timeout=5)
        assert await eventually(lambda: resumed.comments > 0, timeout=5)  # keep-alive pings
    # What it missed, then what came live, in the order of the inbox's seq. The two missed
    # whistles were published together and notify may consume them in either order (it
    # does, on a busy machine), so which of them came first is not asserted.
    got = [n["demand_id"] for n in resumed.notifications]
    assert sorted(got[:2]) == sorted(missed)
    assert got[2:] == [later]
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


async def _ticket(notify: Notify, owner: str, token: str | None = None) -> str:
    async with httpx.AsyncClient(base_url=notify.url, timeout=10) as client:
        response = await client.post(
            "/v1/inbox/stream-ticket", headers=bearer(token or notify.token_for(owner))
        )
    assert response.status_code == 201, response.text
    ticket: str = response.json()["ticket"]
    return ticket


async def _metric(notify: Notify, name: str) -> float:
    async with httpx.AsyncClient(base_url=notify.url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def test_a_stream_ticket_is_single_use_and_tokens_stay_out_of_the_url(
    notify: Notify, rabbitmq: str
) -> None:
    owner = f"volunteer:{s.uid('v')}"
    url = f"{notify.url}/v1/inbox/stream"
    ticket = await _ticket(notify, owner)
    async with open_stream(url, params={"ticket": ticket}) as live:
        assert live.status == 200
    async with open_stream(url, params={"ticket": ticket}) as again:
        assert again.status == 401  # used once already
    async with open_stream(url, params={"ticket": "made-up"}) as forged:
        assert forged.status == 401
    async with open_stream(url, params={"access_token": notify.token_for(owner)}) as in_url:
        assert in_url.status == 401  # no token in the URL (RFC 6750 §2.3)
    # A malformed ticket is no credential: 401 (not 422), even with other bad parameters.
    for malformed in ("", "t" * 201):
        async with open_stream(url, params={"ticket": malformed, "last_event_id": "x" * 30}) as bad:
            assert bad.status == 401
    stored = await notify.db["stream_tickets"].find_one({})
    assert stored is None or ticket not in str(stored)  # only a digest is kept, and used up


async def test_at_most_five_streams_per_principal_then_429(notify: Notify) -> None:
    owner = f"volunteer:{s.uid('v')}"
    url = f"{notify.url}/v1/inbox/stream"
    auth = bearer(notify.token_for(owner))
    async with contextlib.AsyncExitStack() as streams:
        opened = [
            await streams.enter_async_context(open_stream(url, headers=auth)) for _ in range(5)
        ]
        assert [stream.status for stream in opened] == [200] * 5
        async with httpx.AsyncClient(timeout=10) as client:
            sixth = await client.get(url, headers=auth)
        assert sixth.status_code == 429
        assert sixth.headers["content-type"] == "application/problem+json"
        assert sixth.json()["type"].endswith("/too-many-streams")
        other = bearer(notify.token_for(f"volunteer:{s.uid('v')}"))
        async with open_stream(url, headers=other) as someone_else:
            assert someone_else.status == 200  # the limit is per principal
    async with open_stream(url, headers=auth) as after_closing:
        assert after_closing.status == 200  # closed streams give their slots back


async def test_a_stream_closes_when_its_token_expires(notify: Notify) -> None:
    person = s.uid("v")
    short = issue_token(
        DEV_JWT_SECRET, sub=person, role=Role.VOLUNTEER, volunteer=person, ttl=timedelta(seconds=3)
    )
    started = time.monotonic()
    async with open_stream(f"{notify.url}/v1/inbox/stream", headers=bearer(short)) as live:
        assert live.status == 200
        assert await eventually(
            lambda: any(e.get("event") == "expired" for e in live.events), timeout=8
        )
    assert time.monotonic() - started < 8


async def test_idle_streams_cost_one_query_per_process_not_one_per_stream(
    notify: Notify, rabbitmq: str
) -> None:
    c = s.uid("c")
    people = [s.uid("v") for _ in range(4)]
    registry = [s.community(c), *(s.volunteer(person, c) for person in people)]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)
    url = f"{notify.url}/v1/inbox/stream"
    async with contextlib.AsyncExitStack() as streams:
        opened = [
            await streams.enter_async_context(
                open_stream(url, headers=bearer(notify.token_for(f"volunteer:{person}")))
            )
            for person in people
        ]
        await asyncio.sleep(1.5)  # each stream has read its inbox once, on opening
        reads_before = await _metric(notify, "whistle_notify_stream_inbox_reads_total")
        rounds_before = await _metric(notify, "whistle_notify_stream_watch_rounds_total")
        await asyncio.sleep(3.0)  # idle: before, 4 streams x 6 polls of their own
        idle_reads = await _metric(notify, "whistle_notify_stream_inbox_reads_total") - reads_before
        rounds = await _metric(notify, "whistle_notify_stream_watch_rounds_total") - rounds_before
        assert idle_reads == 0
        # One query per poll (0.5 s here) for all four streams together, plus local rings.
        assert 1 <= rounds <= 9
        # One commit notifies all four: each stream is woken and reads its inbox.
        [demand] = await _whistles(notify, rabbitmq, c, 1)
        for stream in opened:

            def told(stream: Stream = stream) -> list[dict[str, Any]]:
                return stream.notifications

            assert await eventually(told, timeout=5)
            assert stream.notifications[0]["demand_id"] == demand
