"""Webhooks and email, off the consuming path: signed, retried, dead-lettered, never twice."""

import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest

from services.notify.adapters.webhook import pinned
from tests.conftest import bearer
from tests.notify import scenario as s
from tests.notify.conftest import MAX_ATTEMPTS
from tests.notify.receivers import Mailbox, WebhookReceiver, eventually
from tests.notify.scenario import Notify
from tests.notify.sse import open_stream
from tests.support.events import collect, publish

pytestmark = pytest.mark.e2e


def signature_ok(body: bytes, header: str, secret: str = s.WEBHOOK_SECRET) -> bool:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, signed within the last 5 minutes."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    signed = fields["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(fields["t"])) <= 300
    return fresh and hmac.compare_digest(fields["v1"], expected)


def consumed(metrics: str, event_type: str) -> float:
    pattern = (
        r'whistle_messages_consumed_total\{[^}]*outcome="ok"[^}]*'
        rf'type="{re.escape(event_type)}"[^}}]*\}} ([0-9.e+]+)'
    )
    return sum(float(value) for value in re.findall(pattern, metrics))


async def test_a_hanging_receiver_does_not_hold_up_anyone_else(
    notify: Notify, rabbitmq: str, receiver: WebhookReceiver
) -> None:
    c = s.uid("c")
    slow, quick, person = s.uid("u"), s.uid("u"), s.uid("v")
    registry = [
        s.community(c),
        *s.reachable_unit(slow, [c], webhook_url=f"{receiver.url}/hang/{slow}"),
        *s.reachable_unit(quick, [c], webhook_url=f"{receiver.url}/ok/{quick}"),
        s.volunteer(person, c),
    ]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)
    stream_url = f"{notify.url}/v1/inbox/stream"

    # The person's inbox is watched live (SSE), so measuring adds no polling load.
    async with open_stream(
        stream_url, headers=bearer(notify.token_for(f"volunteer:{person}"))
    ) as live:
        await publish(rabbitmq, s.published(s.uid("dem"), c))
        assert await eventually(lambda: receiver.to(f"/hang/{slow}"))  # now hanging (30 s)

        second = s.published(s.uid("dem"), c)
        started = time.monotonic()
        await publish(rabbitmq, second)
        arrived = await eventually(
            lambda: second.data["demand_id"] in [n["demand_id"] for n in live.notifications],
            timeout=5,
            every=0.01,
        )
        inbox_delay = time.monotonic() - started
    assert arrived
    assert inbox_delay < 1.0, f"inbox took {inbox_delay:.2f}s"

    # More whistles than there are delivery slots: the hanging receiver keeps its one
    # slot, the other receiver's webhooks all go out meanwhile.
    await publish(rabbitmq, s.published(s.uid("dem"), c), s.published(s.uid("dem"), c))
    assert await eventually(lambda: len(receiver.to(f"/ok/{quick}")) == 4, timeout=5)
    assert not receiver.release.is_set()
    assert len(receiver.to(f"/hang/{slow}")) == 1


async def test_webhook_is_signed_and_email_sent_and_each_channel_reported(
    notify: Notify, rabbitmq: str, receiver: WebhookReceiver, mailbox: Mailbox
) -> None:
    c, unit = s.uid("c"), s.uid("u")
    path, address = f"/ok/{unit}", f"{unit}@units.example"
    registry = [
        s.community(c),
        *s.reachable_unit(unit, [c], webhook_url=receiver.url + path, email=address),
    ]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)

    async with collect(rabbitmq, "notification.*") as outcomes:
        whistle = s.published(s.uid("dem"), c, priority="urgent")
        await publish(rabbitmq, whistle)
        [item] = await notify.wait_inbox(f"unit:{unit}", 1)
        assert await eventually(lambda: receiver.to(path))
        assert await eventually(lambda: mailbox.to(address))

        def mine() -> list[dict[str, Any]]:
            sent = outcomes.of_type("notification.sent")
            return [e for e in sent if e["data"]["notification_id"] == item["id"]]

        # Other tests' outcomes share the exchange: wait for this notification's three.
        assert await eventually(lambda: len(mine()) == 3)

    [request] = receiver.to(path)
    assert signature_ok(request.body, request.headers["X-Whistle-Signature"])
    assert not signature_ok(request.body + b" ", request.headers["X-Whistle-Signature"])
    assert not signature_ok(request.body, request.headers["X-Whistle-Signature"], "whsec_other")
    assert request.headers["X-Whistle-Delivery"] == f"{item['id']}:webhook"
    posted = json.loads(request.body)
    assert posted["id"] == item["id"]
    assert posted["recipient"] == {"type": "unit", "id": unit}
    assert posted["cause_event_id"] == whistle.id
    assert posted["kind"] == "demand.published"
    assert request.headers["Content-Type"] == "application/json"

    [mail] = mailbox.to(address)
    assert item["title"] == mail["Subject"]
    assert item["id"] in mail.get_content()

    assert sorted(e["data"]["channel"] for e in mine()) == ["email", "inbox", "webhook"]
    for event in mine():
        assert event["causationid"] == whistle.id
        assert event["correlationid"] == whistle.correlationid
        assert event["source"] == "/whistle/notify"


async def _at_least(value: Awaitable[float], threshold: float) -> bool:
    return await value >= threshold


async def test_a_redelivered_event_notifies_nobody_twice(
    notify: Notify, rabbitmq: str, receiver: WebhookReceiver
) -> None:
    c, unit = s.uid("c"), s.uid("u")
    path = f"/ok/{unit}"
    registry = [s.community(c), *s.reachable_unit(unit, [c], webhook_url=receiver.url + path)]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)

    async def published_consumed() -> float:
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{notify.url}/metrics")).text
        return consumed(metrics, "demand.published")

    before = await published_consumed()

    async with collect(rabbitmq, "notification.*") as outcomes:
        whistle = s.published(s.uid("dem"), c)
        await publish(rabbitmq, whistle, whistle)  # the same event id, twice
        assert await eventually(lambda: _at_least(published_consumed(), before + 2))
        await publish(rabbitmq, whistle)  # and once more after the first was done
        assert await eventually(lambda: _at_least(published_consumed(), before + 3))
        await eventually(lambda: receiver.to(path))
        await outcomes.settle(1.0)

    assert len((await notify.inbox(f"unit:{unit}"))["items"]) == 1
    assert len(receiver.to(path)) == 1
    channels = [
        e["data"]["channel"]
        for e in outcomes.of_type("notification.sent")
        if e["data"]["recipient"]["id"] == unit
    ]
    assert sorted(channels) == ["inbox", "webhook"]


async def test_a_failing_receiver_is_retried_with_backoff_then_dead_lettered(
    notify: Notify, rabbitmq: str, receiver: WebhookReceiver, token: object
) -> None:
    c, unit = s.uid("c"), s.uid("u")
    path = f"/fail/{unit}"
    registry = [s.community(c), *s.reachable_unit(unit, [c], webhook_url=receiver.url + path)]
    await publish(rabbitmq, *registry)
    await notify.processed(*registry)

    async with collect(rabbitmq, "notification.failed") as outcomes:
        await publish(rabbitmq, s.published(s.uid("dem"), c))

        def failures() -> list[dict[str, Any]]:
            failed = outcomes.of_type("notification.failed")
            return [e for e in failed if e["data"]["recipient"]["id"] == unit]

        assert await eventually(failures, timeout=20)
        [failed] = failures()

    attempts = receiver.to(path)
    assert len(attempts) == MAX_ATTEMPTS
    assert all(signature_ok(a.body, a.headers["X-Whistle-Signature"]) for a in attempts)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert all(gap >= 0.1 for gap in gaps), gaps  # backed off, not hammered
    assert failed["data"]["channel"] == "webhook"
    assert failed["data"]["attempts"] == MAX_ATTEMPTS
    assert "500" in failed["data"]["error"]

    notification_id = failed["data"]["notification_id"]
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{notify.url}/v1/notifications/{notification_id}/deliveries",
            headers=bearer(notify.token_for(f"unit:{unit}")),
        )
    assert response.status_code == 200, response.text
    [delivery] = response.json()
    assert delivery["state"] == "dead"
    assert delivery["attempts"] == MAX_ATTEMPTS
    assert [a["ok"] for a in delivery["history"]] == [False] * MAX_ATTEMPTS
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{notify.url}/metrics")).text
    assert 'whistle_notify_delivery_attempts_total{channel="webhook",outcome="dead"}' in metrics
    dead = await notify.db["dead_letters"].find_one({"notification_id": notification_id})
    assert dead is not None
    assert dead["attempts"] == MAX_ATTEMPTS
    # The inbox copy arrived regardless.
    assert [i["id"] for i in (await notify.inbox(f"unit:{unit}"))["items"]] == [notification_id]


async def test_a_pinned_request_reaches_the_checked_address_with_the_original_host(
    receiver: WebhookReceiver,
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    url, headers, extensions = pinned(f"http://hooks.invalid:{port}/ok/pinned", "127.0.0.1")
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(url, content=b"{}", headers=headers, extensions=extensions)
    assert response.status_code == 200
    [request] = receiver.to("/ok/pinned")
    assert request.headers["Host"] == f"hooks.invalid:{port}"
