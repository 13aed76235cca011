"""Notify as real processes: killed and restarted, stopped with work in flight, two replicas."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest

from shared.clock import utcnow
from shared.events.catalogue import ClaimAccepted, ClaimWithdrawn
from tests.conftest import bearer
from tests.notify import scenario as s
from tests.notify.receivers import eventually, webhook_receiver
from tests.notify.scenario import Notify
from tests.notify.sse import open_stream
from tests.support.events import publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

LEAD = timedelta(hours=2, minutes=15)  # the default reminder lead time


@pytest.fixture
async def notify_alone(
    start_service: Callable[..., ServiceProcess],
    mongodb_url: str,
    db_prefix: str,
    token: Callable[..., str],
) -> AsyncIterator[tuple[ServiceProcess, Notify]]:
    process = await asyncio.to_thread(start_service, "notify")
    client = Notify(process.url, mongodb_url, db_prefix, token)
    yield process, client
    await client.close()


async def test_a_reminder_due_while_notify_was_down_fires_after_restart(
    notify_alone: tuple[ServiceProcess, Notify], rabbitmq_url: str
) -> None:
    process, notify = notify_alone
    c, keen, gone = s.uid("c"), s.uid("v"), s.uid("v")
    registry = [s.community(c), s.volunteer(keen, c), s.volunteer(gone, c)]
    await publish(rabbitmq_url, *registry)
    await notify.processed(*registry)

    starts = utcnow() + LEAD + timedelta(seconds=4)
    demand = s.uid("dem")
    whistle = s.published(demand, c, starts_at=starts)
    await publish(rabbitmq_url, whistle)
    await notify.processed(whistle)
    keen_claim, gone_claim = s.uid("clm"), s.uid("clm")
    claims = [
        s.claim(ClaimAccepted, demand, c, ("volunteer", keen), claim_id=keen_claim),
        s.claim(ClaimAccepted, demand, c, ("volunteer", gone), claim_id=gone_claim),
    ]
    await publish(rabbitmq_url, *claims)
    await notify.processed(*claims)
    withdrawal = s.claim(
        ClaimWithdrawn, demand, c, ("volunteer", gone), claim_id=gone_claim, filled=1, slots=2
    )
    await publish(rabbitmq_url, withdrawal)
    await notify.processed(withdrawal)

    process.kill()  # SIGKILL: nothing held in memory survives
    timers = notify.db["timers"]
    keen_timer = await timers.find_one({"_id": f"reminder:{keen_claim}"})
    gone_timer = await timers.find_one({"_id": f"reminder:{gone_claim}"})
    assert keen_timer is not None
    assert gone_timer is not None
    assert (keen_timer["state"], gone_timer["state"]) == ("pending", "cancelled")
    assert "claim.reminder" not in await _kinds_offline(notify, keen)

    # Stay down until the reminder is due: it must fire from the store, not from memory.
    due_in = (starts - LEAD - utcnow()).total_seconds()
    await asyncio.sleep(max(0.0, due_in) + 0.2)
    await asyncio.to_thread(lambda: process.start().wait_ready())

    items = await notify.wait_inbox(f"volunteer:{keen}", 3, timeout=10)
    kinds = sorted(item["kind"] for item in items)
    assert kinds == ["claim.accepted", "claim.reminder", "demand.published"]
    reminder = next(item for item in items if item["kind"] == "claim.reminder")
    assert reminder["demand_id"] == demand
    assert reminder["cause_type"] == "claim.reminder"
    # The claimant who withdrew hears no reminder.
    assert "claim.reminder" not in await notify.kinds(f"volunteer:{gone}")


async def _kinds_offline(notify: Notify, volunteer: str) -> list[str]:
    """What is in the inbox while the service is down (read from its database)."""
    cursor = notify.db["notifications"].find({"owner": f"volunteer:{volunteer}"})
    return [document["kind"] async for document in cursor]


async def test_sigterm_ends_open_streams_and_hanging_deliveries_cleanly(
    notify_alone: tuple[ServiceProcess, Notify], rabbitmq_url: str
) -> None:
    process, notify = notify_alone
    with webhook_receiver() as receiver:
        c, slow, person = s.uid("c"), s.uid("u"), s.uid("v")
        registry = [
            s.community(c),
            *s.reachable_unit(slow, [c], webhook_url=f"{receiver.url}/hang/{slow}"),
            s.volunteer(person, c),
        ]
        await publish(rabbitmq_url, *registry)
        await notify.processed(*registry)
        auth = bearer(notify.token_for(f"volunteer:{person}"))
        async with open_stream(f"{process.url}/v1/inbox/stream", headers=auth) as live:
            await publish(rabbitmq_url, s.published(s.uid("dem"), c))
            assert await eventually(lambda: receiver.to(f"/hang/{slow}"))
            assert await eventually(lambda: live.notifications)
            await asyncio.to_thread(process.terminate)
    logs = process.logs()
    assert "Application shutdown complete" in logs
    assert '"level": "error"' not in logs
    # The interrupted delivery is handed back: pending, free for the next worker at once.
    [delivery] = await notify.db["deliveries"].find({"channel": "webhook"}).to_list(5)
    assert delivery["state"] == "pending"
    assert delivery["lease_owner"] is None


async def test_two_replicas_send_each_delivery_once_and_stream_what_either_wrote(
    start_service: Callable[..., ServiceProcess],
    mongodb_url: str,
    db_prefix: str,
    token: Callable[..., str],
    rabbitmq_url: str,
) -> None:
    first, second = await asyncio.gather(
        asyncio.to_thread(start_service, "notify"), asyncio.to_thread(start_service, "notify")
    )
    notify = Notify(first.url, mongodb_url, db_prefix, token)
    try:
        with webhook_receiver() as receiver:
            c, units = s.uid("c"), [s.uid("u") for _ in range(2)]
            registry = [
                s.community(c),
                *(
                    event
                    for u in units
                    for event in s.reachable_unit(u, [c], webhook_url=f"{receiver.url}/ok/{u}")
                ),
            ]
            await publish(rabbitmq_url, *registry)
            await notify.processed(*registry)
            whistles = [s.published(s.uid("dem"), c) for _ in range(6)]
            # A stream on one replica shows what either replica wrote (it polls the store).
            auth = bearer(notify.token_for(f"unit:{units[0]}"))
            async with open_stream(f"{second.url}/v1/inbox/stream", headers=auth) as live:
                await publish(rabbitmq_url, *whistles)
                await notify.processed(*whistles)
                assert await eventually(lambda: len(live.notifications) == len(whistles))
            streamed = {n["cause_event_id"] for n in live.notifications}
            assert streamed == {w.id for w in whistles}
            expected = len(whistles) * len(units)
            assert await eventually(lambda: len(receiver.requests) >= expected, timeout=15)
            deliveries = notify.db["deliveries"]
            assert await eventually(
                lambda: _equals(deliveries.count_documents({"state": "sent"}), expected)
            )
            await asyncio.sleep(1.0)  # any second send would arrive now: there must be none
            ids = [r.headers["X-Whistle-Delivery"] for r in receiver.requests]
            assert len(ids) == expected
            assert len(set(ids)) == expected
        assert await notify.db["notifications"].count_documents({}) == expected
    finally:
        await notify.close()


async def _equals(count: Awaitable[int], expected: int) -> bool:
    return await count == expected
