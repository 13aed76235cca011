"""The shared consumer, each case written once and run in memory and on the real RabbitMQ:
typed handlers, data read once (upcast, or dead-lettered when too new), ack, poison, retry."""

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
import structlog
from faststream import AckPolicy
from faststream.message import AckStatus
from faststream.rabbit import RabbitBroker
from faststream.rabbit.annotations import RabbitMessage
from pymongo.errors import ExecutionTimeout, ServerSelectionTimeoutError

from services.units.entrypoints.events import UNITS_DEMAND_EVENTS
from shared.broker.consumer import (
    ATTEMPT_HEADER,
    EventConsumer,
    Handler,
    HandlerMap,
    Incoming,
    check_handlers,
    exactly_once,
)
from shared.broker.topology import ConsumerQueue
from shared.events.catalogue import (
    ClaimAccepted,
    Claimant,
    CommunityRegistered,
    DemandCancelled,
    DemandCompleted,
    EventData,
    NewerDataversion,
    read_data,
    upcast,
)
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.settings import WhistleSettings
from shared.store.mongo import Database
from shared.store.outbox import OUTBOX_COLLECTION
from shared.store.unit_of_work import TransactionConflict, Tx, UnitOfWork
from tests.support.brokers import Brokers
from tests.support.events import event_of

SPEC = ConsumerQueue("tests", "demands", (DemandCancelled, DemandCompleted, ClaimAccepted))


class Recorder:
    """Runs the consumer as the queue's subscriber and records how each message settled."""

    def __init__(self, handlers: HandlerMap) -> None:
        self.consumer = EventConsumer("tests", SPEC, handlers, self._republish)
        self.outcomes: list[AckStatus | None] = []
        self.republished: list[tuple[str, dict[str, Any]]] = []

    async def _republish(self, queue: str, _: RabbitMessage, headers: Mapping[str, Any]) -> None:
        # Recorded, not sent, in both modes: the real round trip is in test_dead_letters.py.
        self.republished.append((queue, dict(headers)))

    async def __call__(self, message: RabbitMessage) -> None:
        await self.consumer(message)
        self.outcomes.append(message.committed)


def _subscribed(brokers: Brokers, recorder: Recorder) -> RabbitBroker:
    broker = brokers.broker()
    broker.subscriber(SPEC.queue(), SPEC.exchange, ack_policy=AckPolicy.MANUAL)(recorder)
    return broker


def _cancelled(demand_id: str = "d_1") -> CloudEvent:
    return event_of(
        DemandCancelled(demand_id=demand_id, community_id="c-1", reason="rain"),
        subject=demand_id,
    )


def _completed(demand_id: str = "d_1") -> CloudEvent:
    return event_of(DemandCompleted(demand_id=demand_id, community_id="c-1"), subject=demand_id)


def _recording(seen: list[Incoming[Any]]) -> Handler:
    async def handle(event: Incoming[Any]) -> None:
        seen.append(event)

    return handle


def _handlers(**overrides: Handler) -> HandlerMap:
    """A handler for each of SPEC's models (none records anything unless overridden)."""
    ignore = _recording([])
    return {model: overrides.get(model.__name__, ignore) for model in SPEC.events}


# --- the map and the queue agree, or nothing starts ------------------------------------------


@pytest.mark.unit
def test_a_map_missing_one_of_the_queues_events_refuses_to_start() -> None:
    handlers = dict(_handlers())
    del handlers[DemandCompleted]
    with pytest.raises(ValueError, match="no handler for DemandCompleted"):
        Recorder(handlers)


@pytest.mark.unit
def test_a_map_handling_an_event_the_queue_does_not_receive_refuses_to_start() -> None:
    handlers: dict[type[EventData], Handler] = {**_handlers(), CommunityRegistered: _recording([])}
    with pytest.raises(ValueError, match="does not receive: CommunityRegistered"):
        check_handlers(SPEC, handlers)


@pytest.mark.unit
def test_a_service_whose_map_disagrees_with_its_queue_does_not_start() -> None:
    runtime = ServiceRuntime("units", WhistleSettings(env="development"))
    with pytest.raises(ValueError, match="no handler for DemandExpired"):
        runtime.consume(
            UNITS_DEMAND_EVENTS,
            {model: _recording([]) for model in UNITS_DEMAND_EVENTS.events[:-1]},
        )
    assert runtime.consumers == []


@pytest.mark.unit
def test_a_queue_never_mixes_the_private_and_the_audited_channel() -> None:
    from shared.events.catalogue import DemandDetails

    with pytest.raises(ValueError, match="mixes private and audited"):
        ConsumerQueue("tests", "mixed", (DemandCancelled, DemandDetails))
    assert ConsumerQueue("tests", "private", (DemandDetails,)).exchange_name == "whistle.private"
    assert SPEC.routing_keys == ("demand.cancelled", "demand.completed", "claim.accepted")


# --- delivery ----------------------------------------------------------------------------------


async def test_the_handler_for_its_model_gets_the_data_the_envelope_and_the_raw_body(
    brokers: Brokers,
) -> None:
    cancelled: list[Incoming[Any]] = []
    completed: list[Incoming[Any]] = []
    recorder = Recorder(
        _handlers(DemandCancelled=_recording(cancelled), DemandCompleted=_recording(completed))
    )
    broker = _subscribed(brokers, recorder)
    event = _cancelled()
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, event, to=[recorder.consumer])
    [incoming] = cancelled
    assert isinstance(incoming.data, DemandCancelled)
    assert incoming.data.reason == "rain"
    assert incoming.envelope == event
    assert json.loads(incoming.body) == event.wire()
    if brokers.kind == "real":  # the channel's tag: audit appends in delivery order
        assert isinstance(incoming.delivery_tag, int)
    assert completed == []
    assert recorder.outcomes == [AckStatus.ACKED]


async def test_an_older_dataversion_is_upcast_before_the_handler_sees_it(
    brokers: Brokers,
) -> None:
    seen: list[Incoming[Any]] = []
    recorder = Recorder(_handlers(ClaimAccepted=_recording(seen)))
    broker = _subscribed(brokers, recorder)
    # claim.accepted v1 named the members; v2 counts them (the names stay in units).
    v1 = {
        "claim_id": "clm_1",
        "demand_id": "d_1",
        "community_id": "c-1",
        "claimant": {"type": "unit", "id": "u-1"},
        "headcount": 3,
        "members": ["Ana", "Bo"],
        "filled": 3,
        "slots": 5,
    }
    current = _claim_accepted()
    old = current.model_copy(update={"data": v1, "dataversion": 1})
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, old, to=[recorder.consumer])
    [incoming] = seen
    assert incoming.data == ClaimAccepted(
        claim_id="clm_1",
        demand_id="d_1",
        community_id="c-1",
        claimant=Claimant(type="unit", id="u-1"),
        headcount=3,
        members_named=2,
        filled=3,
        slots=5,
    )
    assert incoming.envelope.dataversion == 1  # the envelope stays as it was sent
    assert "Ana" not in repr(incoming.data)
    assert recorder.outcomes == [AckStatus.ACKED]


async def test_a_newer_dataversion_is_dead_lettered_with_the_reason(brokers: Brokers) -> None:
    seen: list[Incoming[Any]] = []
    recorder = Recorder(_handlers(DemandCancelled=_recording(seen)))
    broker = _subscribed(brokers, recorder)
    newer = _cancelled().model_copy(update={"dataversion": DemandCancelled.DATAVERSION + 1})
    async with brokers.running(broker, SPEC):
        with structlog.testing.capture_logs() as logs:
            await brokers.deliver(broker, newer, to=[recorder.consumer])
    assert seen == []
    assert recorder.outcomes == [AckStatus.REJECTED]  # to the queue's dead-letter route
    [logged] = [entry for entry in logs if entry["event"] == "event_dataversion_unreadable"]
    assert logged["dataversion"] == 2
    assert logged["reads"] == 1
    assert "newer than this consumer reads" in logged["reason"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        json.dumps({"type": "demand.cancelled", "data": {}}).encode(),  # not a CloudEvent
        json.dumps([1, 2, 3]).encode(),
    ],
)
async def test_poison_message_is_rejected_without_calling_a_handler(
    brokers: Brokers, body: bytes
) -> None:
    called: list[Incoming[Any]] = []
    recorder = Recorder(_handlers(DemandCancelled=_recording(called)))
    broker = _subscribed(brokers, recorder)
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, body, routing_key="demand.cancelled", to=[recorder.consumer])
    assert called == []
    assert recorder.outcomes == [AckStatus.REJECTED]


async def test_data_that_does_not_fit_its_model_is_rejected_before_the_handler(
    brokers: Brokers,
) -> None:
    called: list[Incoming[Any]] = []
    recorder = Recorder(_handlers(DemandCancelled=_recording(called)))
    broker = _subscribed(brokers, recorder)
    unfit = _cancelled().model_copy(update={"data": {"demand_id": "d_1"}})
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, unfit, to=[recorder.consumer])
    assert called == []
    assert recorder.outcomes == [AckStatus.REJECTED]


async def test_handler_failure_is_republished_with_its_attempt_count(brokers: Brokers) -> None:
    async def fails(_: Incoming[Any]) -> None:
        raise ConnectionError("database away")

    recorder = Recorder(_handlers(DemandCancelled=fails))
    broker = _subscribed(brokers, recorder)
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, _cancelled(), to=[recorder.consumer])
        await brokers.deliver(
            broker, _cancelled("d_2"), headers={ATTEMPT_HEADER: 2}, to=[recorder.consumer]
        )
    # Whistle counts the attempt itself (RabbitMQ 4.3 no longer counts nacks): the copy
    # carries it, and the original is acked rather than nacked.
    assert recorder.republished == [
        (SPEC.name, {ATTEMPT_HEADER: 1}),
        (SPEC.name, {ATTEMPT_HEADER: 3}),
    ]
    assert recorder.outcomes == [AckStatus.ACKED, AckStatus.ACKED]


async def test_handler_failure_at_the_last_attempt_is_dead_lettered(brokers: Brokers) -> None:
    async def broken(_: Incoming[Any]) -> None:
        raise RuntimeError("broken")

    recorder = Recorder(_handlers(DemandCancelled=broken))
    broker = _subscribed(brokers, recorder)
    async with brokers.running(broker, SPEC):
        await brokers.deliver(
            broker,
            _cancelled(),
            headers={ATTEMPT_HEADER: SPEC.max_attempts - 1},
            to=[recorder.consumer],
        )
    assert recorder.republished == []
    assert recorder.outcomes == [AckStatus.REJECTED]


async def test_the_queue_receives_exactly_its_models_types(brokers: Brokers) -> None:
    seen: list[Incoming[Any]] = []
    recorder = Recorder(
        _handlers(DemandCancelled=_recording(seen), DemandCompleted=_recording(seen))
    )
    broker = _subscribed(brokers, recorder)
    registered = event_of(
        CommunityRegistered(community_id="c-1", name="North", street="s", district="d"),
        subject="c-1",
    )
    async with brokers.running(broker, SPEC):
        await brokers.publish(broker, registered)  # other queues take it; this one must not
        # Every binding routes, not only the first one FastStream binds itself.
        await brokers.deliver(broker, _completed(), to=[recorder.consumer])
        await brokers.deliver(broker, _cancelled(), to=[recorder.consumer])
    assert [event.envelope.type for event in seen] == ["demand.completed", "demand.cancelled"]
    assert recorder.outcomes == [AckStatus.ACKED, AckStatus.ACKED]


async def test_log_context_carries_the_message_identity(brokers: Brokers) -> None:
    bound: list[dict[str, Any]] = []

    async def handle(_: Incoming[Any]) -> None:
        bound.append(structlog.contextvars.get_contextvars())

    recorder = Recorder(_handlers(DemandCancelled=handle))
    broker = _subscribed(brokers, recorder)
    event = _cancelled()
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, event, to=[recorder.consumer])
    assert bound[0]["event_id"] == event.id
    assert bound[0]["event_type"] == "demand.cancelled"
    assert bound[0]["correlationid"] == event.correlationid
    assert bound[0]["causationid"] == event.causationid
    assert "event_id" not in structlog.contextvars.get_contextvars()


async def test_database_outage_waits_instead_of_spending_deliveries(brokers: Brokers) -> None:
    calls = 0

    async def needs_the_database(_: Incoming[Any]) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")

    recorder = Recorder(_handlers(DemandCancelled=needs_the_database))
    broker = _subscribed(brokers, recorder)
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, _cancelled(), to=[recorder.consumer])
    assert calls == 3
    assert recorder.outcomes == [AckStatus.ACKED]  # never nacked: no delivery spent


async def test_a_busy_store_waits_instead_of_spending_attempts(brokers: Brokers) -> None:
    calls = 0

    async def waits_its_turn(_: Incoming[Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransactionConflict("operation exceeded time limit") from ExecutionTimeout(
                "operation exceeded time limit", 50
            )
        if calls == 2:
            raise TransactionConflict("write conflicts kept coming")

    recorder = Recorder(_handlers(DemandCancelled=waits_its_turn))
    broker = _subscribed(brokers, recorder)
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, _cancelled(), to=[recorder.consumer])
    assert calls == 3
    assert recorder.outcomes == [AckStatus.ACKED]  # never republished as a failed attempt


def _claim_accepted() -> CloudEvent:
    return event_of(
        ClaimAccepted(
            claim_id="clm_1",
            demand_id="d_1",
            community_id="c-1",
            claimant=Claimant(type="unit", id="u-1"),
            headcount=3,
            filled=3,
            slots=5,
        ),
        subject="d_1",
    )


# --- upcasting, without a broker ----------------------------------------------------------------


class _Reading(EventData):
    """A test-only event at v3: v1 said `celsius`, v2 said `kelvin`, v3 adds `unit`."""

    TYPE = "tests.reading"
    DATAVERSION = 3
    PRODUCER = "tests"
    SUBJECT = "the sensor id"
    WHEN = "never: a test model"
    UPCASTS: ClassVar = {
        1: lambda data: {"kelvin": data["celsius"] + 273.15},
        2: lambda data: {**data, "unit": "K"},
    }

    kelvin: float
    unit: str


@pytest.mark.unit
def test_upcasts_run_one_version_at_a_time() -> None:
    assert read_data(_Reading, {"celsius": 20.0}, 1) == _Reading(kelvin=293.15, unit="K")
    assert read_data(_Reading, {"kelvin": 1.0}, 2) == _Reading(kelvin=1.0, unit="K")
    assert upcast(_Reading, {"kelvin": 1.0, "unit": "K"}, 3) == {"kelvin": 1.0, "unit": "K"}
    with pytest.raises(NewerDataversion):
        read_data(_Reading, {"kelvin": 1.0, "unit": "K"}, 4)


# --- exactly once: the handler map of a queue whose handlers change state -----------------------


async def test_a_redelivered_event_changes_nothing_twice(
    brokers: Brokers, uow: UnitOfWork, db: Database
) -> None:
    applied: list[bool] = []

    async def on_cancelled(tx: Tx, event: Incoming[DemandCancelled]) -> None:
        await tx.db.demands.update_one(
            {"_id": event.data.demand_id},
            {"$inc": {"cancellations": 1}},
            upsert=True,
            session=tx.session,
        )
        tx.emit(
            DemandCompleted(demand_id=event.data.demand_id, community_id="c-1"),
            subject=event.data.demand_id,
        )

    async def nothing(tx: Tx, event: Incoming[Any]) -> None:
        return None

    handlers = exactly_once(
        uow,
        SPEC,
        {DemandCancelled: on_cancelled, DemandCompleted: nothing, ClaimAccepted: nothing},
        on_applied=lambda: applied.append(True),
    )
    recorder = Recorder(handlers)
    broker = _subscribed(brokers, recorder)
    event = _cancelled()
    async with brokers.running(broker, SPEC):
        await brokers.deliver(broker, event, to=[recorder.consumer])
        await brokers.deliver(broker, event, to=[recorder.consumer])  # the broker redelivers
    assert await db.demands.find_one({"_id": "d_1"}) == {"_id": "d_1", "cancellations": 1}
    assert applied == [True]
    assert recorder.outcomes == [AckStatus.ACKED, AckStatus.ACKED]
    [document] = await db[OUTBOX_COLLECTION].find({}).to_list(None)
    assert document["event"]["causationid"] == event.id  # the consumed event caused it
    assert document["event"]["correlationid"] == event.correlationid
