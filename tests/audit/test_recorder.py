"""The recorder's ordering and batching, with the log replaced by a list (no I/O)."""

import asyncio
import json
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import pytest

from services.audit.adapters.log_store import Appended
from services.audit.handlers.events import EventRecorder
from services.audit.handlers.timers import Checkpointing
from shared.broker.consumer import Incoming
from shared.events import catalogue as c
from shared.events.envelope import CloudEvent
from tests.support.events import event_of

pytestmark = pytest.mark.unit

_body: ContextVar[bytes | None] = ContextVar("body", default=None)


class FakeLog:
    """Partitions as lists; a route table; an append takes a while, so others queue up."""

    def __init__(self, fail_batches: int = 0) -> None:
        self.ids: list[str] = []
        self.stored: list[dict[str, Any]] = []
        self.batches: list[list[str]] = []
        self.partitions: dict[str, list[str]] = {}
        self.fixed: dict[str, str] = {}
        self.fail_batches = fail_batches
        self.in_flight = 0
        self.most_in_flight = 0

    async def routes(self, keys: Sequence[str]) -> Mapping[str, str]:
        return {key: self.fixed[key] for key in keys if key in self.fixed}

    async def append(
        self, partition: str, events: list[dict[str, Any]], fixes: Mapping[str, str]
    ) -> Appended:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        self.batches.append([e["id"] for e in events])
        if self.fail_batches:
            self.fail_batches -= 1
            raise RuntimeError("the store is away")
        chain = self.partitions.setdefault(partition, [])
        seqs: list[int | None] = []
        for event in events:
            if event["id"] in self.ids:
                seqs.append(None)
            else:
                self.ids.append(event["id"])
                self.stored.append(event)
                chain.append(event["id"])
                seqs.append(len(chain))
        for key, value in fixes.items():
            self.fixed.setdefault(key, value)
        return Appended(partition, seqs, len(chain), f"h{len(chain)}")


def events(n: int) -> list[CloudEvent]:
    return [
        event_of(
            c.CommunityRegistered(community_id=f"c{i}", name="n", street="s", district="d"),
            subject=f"c{i}",
        )
        for i in range(n)
    ]


def recorder(log: FakeLog, gap_wait_s: float = 0.25) -> EventRecorder:
    return EventRecorder(log, gap_wait_s=gap_wait_s)


async def deliver(rec: EventRecorder, event: CloudEvent, tag: int, delay: float) -> None:
    """As the consumer hands it over: the envelope, the producer's bytes, the delivery tag."""
    body = _body.get()
    await asyncio.sleep(delay)
    data = c.CATALOGUE[event.type].model_validate(event.data)
    raw = body if body is not None else json.dumps(event.wire()).encode()
    await rec.record(Incoming(data=data, envelope=event, body=raw, delivery_tag=tag))


async def test_appends_in_delivery_order_whatever_order_handlers_reach_it() -> None:
    log = FakeLog()
    rec = recorder(log)
    batch = events(6)
    # Handlers reach the recorder in the order 3, 1, 2, 6, 4, 5.
    delays = [0.002, 0.004, 0.0, 0.03, 0.035, 0.025]
    await asyncio.gather(
        *(deliver(rec, e, tag, d) for tag, (e, d) in enumerate(zip(batch, delays, strict=True), 1))
    )
    assert log.ids == [e.id for e in batch]
    assert len(log.batches) < 6  # events that queued up went in together


async def test_a_delivery_that_never_comes_holds_the_rest_only_briefly() -> None:
    log = FakeLog()
    rec = recorder(log, gap_wait_s=0.05)
    first, second, third = events(3)
    # Tag 2 was a poison message, rejected before it reached the recorder.
    await asyncio.wait_for(
        asyncio.gather(deliver(rec, first, 1, 0), deliver(rec, third, 3, 0.001)), 2
    )
    await asyncio.wait_for(deliver(rec, second, 4, 0), 2)
    assert log.ids == [first.id, third.id, second.id]


async def test_tags_restarting_on_a_new_channel_are_taken_in_order() -> None:
    log = FakeLog()
    rec = recorder(log)
    batch = events(4)
    await asyncio.gather(deliver(rec, batch[0], 1, 0), deliver(rec, batch[1], 2, 0.001))
    # The connection dropped; the new channel numbers its deliveries from 1 again.
    await asyncio.wait_for(
        asyncio.gather(deliver(rec, batch[3], 2, 0.0), deliver(rec, batch[2], 1, 0.005)), 2
    )
    assert log.ids == [e.id for e in batch]


async def test_a_failed_batch_fails_each_of_its_messages_and_the_next_goes_on() -> None:
    log = FakeLog(fail_batches=1)
    rec = recorder(log)
    first, second = events(2)
    results = await asyncio.gather(deliver(rec, first, 1, 0), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    await deliver(rec, second, 2, 0)
    await deliver(rec, first, 3, 0)  # the broker redelivers the failed one
    assert log.ids == [second.id, first.id]


class TimelineLog(FakeLog):
    """Notes when each round reaches the store."""

    def __init__(self, timeline: list[str]) -> None:
        super().__init__()
        self.timeline = timeline

    async def append(
        self, partition: str, events: list[dict[str, Any]], fixes: Mapping[str, str]
    ) -> Appended:
        self.timeline.append(f"round {len(self.batches) + 1} to the store")
        return await super().append(partition, events, fixes)


async def test_the_next_round_reaches_the_store_before_the_last_rounds_handlers_ack() -> None:
    """Group commit keeps the store busy: the round after a commit is sent at once, while the
    committed round's handlers go on to ack their messages (each a few ms of the loop)."""
    timeline: list[str] = []
    log = TimelineLog(timeline)
    rec = recorder(log)
    first, second, third, fourth = events(4)

    async def handled(event: CloudEvent, tag: int, delay: float) -> None:
        await deliver(rec, event, tag, delay)
        timeline.append(f"tag {tag} acked")

    # Tags 1 and 2 form round 1; 3 and 4 arrive while it runs, and form round 2.
    await asyncio.gather(
        handled(first, 1, 0), handled(second, 2, 0), handled(third, 3, 0.002),
        handled(fourth, 4, 0.003),
    )  # fmt: skip
    assert log.batches == [[first.id, second.id], [third.id, fourth.id]]
    assert timeline.index("round 2 to the store") < timeline.index("tag 1 acked")


class RefusingLog(FakeLog):
    """A store that cannot take one particular event (and so fails any batch holding it)."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    async def append(
        self, partition: str, events: list[dict[str, Any]], fixes: Mapping[str, str]
    ) -> Appended:
        if any(event["id"] == self.refused for event in events):
            self.batches.append([e["id"] for e in events])
            raise OverflowError("MongoDB can only handle up to 8-byte ints")
        return await super().append(partition, events, fixes)


async def test_a_failed_batch_is_retried_event_by_event_so_only_the_bad_one_fails() -> None:
    batch = events(5)
    log = RefusingLog(refused=batch[2].id)
    rec = recorder(log)
    results = await asyncio.gather(
        *(deliver(rec, event, tag, 0) for tag, event in enumerate(batch, 1)),
        return_exceptions=True,
    )
    assert [isinstance(result, OverflowError) for result in results] == [
        False, False, True, False, False
    ]  # fmt: skip
    assert log.ids == [e.id for e in batch if e.id != batch[2].id]  # neighbours, in order
    assert any(len(b) > 1 for b in log.batches)  # it was a batch that failed


async def test_duplicates_within_and_across_batches_are_stored_once() -> None:
    log = FakeLog()
    rec = recorder(log)
    [event] = events(1)
    await asyncio.gather(*(deliver(rec, event, tag, 0) for tag in (1, 2, 3)))
    await deliver(rec, event, 4, 0)
    assert log.ids == [event.id]


async def test_the_event_is_stored_as_its_producer_wrote_it() -> None:
    log = FakeLog()
    rec = recorder(log)
    [event] = events(1)
    sent = {**event.wire(), "time": "2026-03-01T00:00:00.500Z", "x-trace": {"hop": 1}}
    _body.set(json.dumps(sent).encode())
    await deliver(rec, event, 1, 0)
    assert log.stored == [sent]
    # Re-serialising the parsed model would have changed what the hash covers.
    assert CloudEvent.model_validate(sent).wire()["time"] != sent["time"]
    # A body that is not this event (not JSON, or not its JSON): the model's JSON is kept.
    _body.set(b"not json")
    [other] = events(1)
    await deliver(rec, other, 2, 0)
    assert log.stored[1] == other.wire()
    # A time the model accepts but readers could not parse back: the model's JSON is kept.
    [epoch] = events(1)
    _body.set(json.dumps({**epoch.wire(), "time": 1772323200}).encode())
    await deliver(rec, epoch, 3, 0)
    assert log.stored[2] == epoch.wire()


def in_district(n: int, district: str) -> list[CloudEvent]:
    return [
        event_of(
            c.CommunityRegistered(
                community_id=f"c-{district}-{i}", name="n", street="s", district=district
            ),
            subject=f"c-{district}-{i}",
        )
        for i in range(n)
    ]


async def test_partitions_are_appended_in_parallel_each_in_delivery_order() -> None:
    log = FakeLog()
    rec = recorder(log)
    north, south = in_district(4, "d-north"), in_district(4, "d-south")
    mixed = [event for pair in zip(north, south, strict=True) for event in pair]
    await asyncio.gather(*(deliver(rec, e, tag, 0) for tag, e in enumerate(mixed, 1)))
    assert log.partitions == {"d-north": [e.id for e in north], "d-south": [e.id for e in south]}
    assert log.most_in_flight == 2  # the two partitions' transactions overlapped
    # A demand of a known community follows it into its district, and stays there.
    claim = event_of(
        c.DemandCancelled(demand_id="dem-1", community_id="c-d-south-0", reason="r"),
        subject="dem-1",
    )
    await deliver(rec, claim, len(mixed) + 1, 0)
    assert log.partitions["d-south"][-1] == claim.id
    assert log.fixed["demand:dem-1"] == "d-south"


async def test_every_so_many_stored_events_every_partitions_head_is_pinned() -> None:
    log = FakeLog()
    pins: list[dict[str, tuple[int, str]]] = []

    async def heads() -> dict[str, tuple[int, str]]:
        return {name: (len(chain), f"h{len(chain)}") for name, chain in log.partitions.items()}

    class Pins(Checkpointing):
        async def pin(self) -> None:
            pins.append(dict(await self.heads()))

    rec = EventRecorder(log, Pins(heads, every=3, interval_s=3600))
    north, south = in_district(2, "d-north"), in_district(2, "d-south")
    for tag, event in enumerate([*north, *south, north[0]], 1):  # the last is a duplicate
        await deliver(rec, event, tag, 0)
    # Pinned once 3 new events were stored, not per partition, and duplicates do not count.
    assert pins == [{"d-north": (2, "h2"), "d-south": (1, "h1")}]
