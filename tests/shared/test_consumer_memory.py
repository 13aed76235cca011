"""The consumer wrapper through FastStream's in-memory broker: routing, ack, poison, retry."""

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
import structlog
from faststream import AckPolicy
from faststream.exceptions import SubscriberNotFound
from faststream.message import AckStatus
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from faststream.rabbit.annotations import RabbitMessage
from pymongo.errors import ServerSelectionTimeoutError

from shared.broker.consumer import ATTEMPT_HEADER, EventConsumer, EventHandler
from shared.broker.topology import EVENTS_EXCHANGE, ConsumerQueue
from shared.events.catalogue import CommunityRegistered, DemandCancelled, parse_data
from shared.events.envelope import CloudEvent
from tests.support.events import event_of

pytestmark = pytest.mark.memory

SPEC = ConsumerQueue("tests", "demands", ("demand.*",))


class Recorder:
    """Runs the wrapper as a subscriber and records how each message was settled."""

    def __init__(self, handlers: dict[str, EventHandler]) -> None:
        self.consumer = EventConsumer("tests", SPEC, handlers, self._republish)
        self.outcomes: list[AckStatus | None] = []
        self.republished: list[tuple[str, dict[str, Any]]] = []

    async def _republish(self, queue: str, _: RabbitMessage, headers: Mapping[str, Any]) -> None:
        self.republished.append((queue, dict(headers)))

    async def __call__(self, message: RabbitMessage) -> None:
        await self.consumer(message)
        self.outcomes.append(message.committed)


def _broker(recorder: Recorder) -> RabbitBroker:
    broker = RabbitBroker()
    broker.subscriber(SPEC.queue(), EVENTS_EXCHANGE, ack_policy=AckPolicy.MANUAL)(recorder)
    return broker


async def _send(broker: RabbitBroker, body: Any, routing_key: str) -> None:
    await broker.publish(body, exchange=EVENTS_EXCHANGE, routing_key=routing_key)


def _cancelled(demand_id: str = "d_1") -> CloudEvent:
    return event_of(
        DemandCancelled(demand_id=demand_id, community_id="c-1", reason="rain"),
        subject=demand_id,
        correlationid=demand_id,
    )


def _recording(seen: list[CloudEvent]) -> Callable[[CloudEvent], Awaitable[None]]:
    async def handle(event: CloudEvent) -> None:
        seen.append(event)

    return handle


async def test_event_goes_to_the_handler_for_its_type_and_is_acked() -> None:
    cancelled: list[CloudEvent] = []
    other: list[CloudEvent] = []
    recorder = Recorder(
        {"demand.cancelled": _recording(cancelled), "demand.completed": _recording(other)}
    )
    broker = _broker(recorder)
    event = _cancelled()
    async with TestRabbitBroker(broker):
        await _send(broker, event.wire(), event.type)
    assert cancelled == [event]
    assert other == []
    assert recorder.outcomes == [AckStatus.ACKED]


async def test_catch_all_handler_and_unhandled_types() -> None:
    caught: list[CloudEvent] = []
    recorder = Recorder({"#": _recording(caught)})
    broker = _broker(recorder)
    event = _cancelled()
    async with TestRabbitBroker(broker):
        await _send(broker, event.wire(), event.type)
    assert caught == [event]

    recorder = Recorder({"demand.completed": _recording(caught)})
    broker = _broker(recorder)
    async with TestRabbitBroker(broker):
        await _send(broker, _cancelled("d_2").wire(), "demand.cancelled")
    assert [e.subject for e in caught] == ["d_1"]
    assert recorder.outcomes == [AckStatus.ACKED]  # a type nobody handles is acked, not stuck


async def test_log_context_carries_the_message_identity() -> None:
    bound: list[dict[str, Any]] = []

    async def handle(_: CloudEvent) -> None:
        bound.append(structlog.contextvars.get_contextvars())

    broker = _broker(Recorder({"demand.cancelled": handle}))
    event = _cancelled()
    async with TestRabbitBroker(broker):
        await _send(broker, event.wire(), event.type)
    assert bound[0]["event_id"] == event.id
    assert bound[0]["event_type"] == "demand.cancelled"
    assert bound[0]["correlationid"] == event.correlationid
    assert bound[0]["causationid"] == event.causationid
    assert "event_id" not in structlog.contextvars.get_contextvars()


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        json.dumps({"type": "demand.cancelled", "data": {}}).encode(),  # not a CloudEvent
        json.dumps([1, 2, 3]).encode(),
    ],
)
async def test_poison_message_is_rejected_without_calling_a_handler(body: bytes) -> None:
    called: list[CloudEvent] = []
    recorder = Recorder({"#": _recording(called)})
    broker = _broker(recorder)
    async with TestRabbitBroker(broker):
        await _send(broker, body, "demand.cancelled")
    assert called == []
    assert recorder.outcomes == [AckStatus.REJECTED]


async def test_data_that_does_not_fit_its_model_is_rejected() -> None:
    async def handle(event: CloudEvent) -> None:
        parse_data(CommunityRegistered, event.data)

    recorder = Recorder({"demand.cancelled": handle})
    broker = _broker(recorder)
    async with TestRabbitBroker(broker):
        await _send(broker, _cancelled().wire(), "demand.cancelled")
    assert recorder.outcomes == [AckStatus.REJECTED]


async def test_handler_failure_is_republished_with_its_attempt_count() -> None:
    async def handle(_: CloudEvent) -> None:
        raise ConnectionError("database away")

    recorder = Recorder({"demand.cancelled": handle})
    broker = _broker(recorder)
    async with TestRabbitBroker(broker):
        await _send(broker, _cancelled().wire(), "demand.cancelled")
        await broker.publish(
            _cancelled("d_2").wire(),
            exchange=EVENTS_EXCHANGE,
            routing_key="demand.cancelled",
            headers={ATTEMPT_HEADER: 2},
        )
    # Whistle counts the attempt itself (RabbitMQ 4.3 no longer counts nacks): the copy
    # carries it, and the original is acked rather than nacked.
    assert recorder.republished == [
        (SPEC.name, {ATTEMPT_HEADER: 1}),
        (SPEC.name, {ATTEMPT_HEADER: 3}),
    ]
    assert recorder.outcomes == [AckStatus.ACKED, AckStatus.ACKED]


async def test_handler_failure_at_the_last_attempt_is_dead_lettered() -> None:
    async def handle(_: CloudEvent) -> None:
        raise RuntimeError("broken")

    recorder = Recorder({"demand.cancelled": handle})
    broker = _broker(recorder)
    async with TestRabbitBroker(broker):
        await broker.publish(
            _cancelled().wire(),
            exchange=EVENTS_EXCHANGE,
            routing_key="demand.cancelled",
            headers={ATTEMPT_HEADER: SPEC.max_attempts - 1},
        )
    assert recorder.republished == []
    assert recorder.outcomes == [AckStatus.REJECTED]


async def test_queue_receives_only_its_routing_keys() -> None:
    caught: list[CloudEvent] = []
    recorder = Recorder({"#": _recording(caught)})
    broker = _broker(recorder)
    registered = event_of(
        CommunityRegistered(community_id="c-1", name="North", street="s", district="d"),
        subject="c-1",
    )
    async with TestRabbitBroker(broker):
        with pytest.raises(SubscriberNotFound):  # the in-memory broker's "unroutable"
            await _send(broker, registered.wire(), registered.type)
        await _send(broker, _cancelled().wire(), "demand.cancelled")
    assert [event.type for event in caught] == ["demand.cancelled"]


async def test_database_outage_waits_instead_of_spending_deliveries() -> None:
    calls = 0

    async def needs_the_database(_: CloudEvent) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")

    recorder = Recorder({"demand.cancelled": needs_the_database})
    broker = _broker(recorder)
    async with TestRabbitBroker(broker):
        await _send(broker, _cancelled().wire(), "demand.cancelled")
    assert calls == 3
    assert recorder.outcomes == [AckStatus.ACKED]  # never nacked: no delivery spent
