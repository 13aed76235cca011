"""A consumer's handler map is the one declaration of what its queue receives (issue 11).

The queue is built from the map's keys, so consuming one more event type is one more entry in
the map (and its handler): the queue's bindings follow, on the real broker and in memory.
Every service still declares every queue (`services.topology`), and start-up refuses a
queue that the system's topology lacks or declares otherwise."""

import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, cast

import pytest

from services.audit.entrypoints import events as audit_events
from services.dispatch.config import DispatchSettings
from services.dispatch.entrypoints import events as dispatch_events
from services.notify.entrypoints import events as notify_events
from services.topology import ALL_CONSUMER_QUEUES
from services.units.config import UnitsSettings
from services.units.entrypoints import events as units_events
from shared.broker.consumer import Configured, Incoming, Wiring, configure, exactly_once
from shared.broker.topology import ConsumerQueue
from shared.events.catalogue import DemandCompleted, DemandReopened, public_models
from shared.runtime import ServiceRuntime
from shared.settings import WhistleSettings
from shared.store.unit_of_work import Tx
from tests.support.brokers import Brokers
from tests.support.events import event_of


@pytest.mark.unit
def test_each_queue_receives_exactly_its_maps_models_in_the_maps_order() -> None:
    pairs: list[tuple[ConsumerQueue, Any]] = [
        (dispatch_events.DISPATCH_UNIT_EVENTS, dispatch_events.UNIT_EVENTS),
        (units_events.UNITS_DEMAND_EVENTS, units_events.DEMAND_EVENTS),
        (units_events.UNITS_PRIVATE, units_events.PRIVATE_EVENTS),
        (notify_events.NOTIFY_EVENTS, notify_events.EVENTS),
        (notify_events.NOTIFY_PRIVATE, notify_events.PRIVATE),
    ]
    for spec, declared in pairs:
        assert spec.events == tuple(declared), spec.name
        assert spec.routing_keys == tuple(model.TYPE for model in declared), spec.name
    # Audit's is the one queue not built from a map: it takes every public model.
    assert audit_events.AUDIT_EVENTS.events == public_models()


@pytest.mark.unit
def test_the_system_topology_is_every_services_queues_once() -> None:
    names = [spec.name for spec in ALL_CONSUMER_QUEUES]
    assert names == [
        "dispatch.unit-events",
        "units.demand-events",
        "units.zone-events",
        "notify.events",
        "audit.events",
        "units.private",
        "notify.private",
    ]
    queues = {
        *dispatch_events.QUEUES,
        *units_events.QUEUES,
        *notify_events.QUEUES,
        *audit_events.QUEUES,
    }
    assert queues == set(ALL_CONSUMER_QUEUES)


@pytest.mark.unit
def test_every_service_registers_its_consumers_under_the_system_topology() -> None:
    """What each bootstrap does: no ValueError, and each runtime declares every queue."""
    consumed: list[str] = []
    dispatch = ServiceRuntime("dispatch", DispatchSettings(), topology=ALL_CONSUMER_QUEUES)
    dispatch_events.register_consumers(dispatch, DispatchSettings())
    units = ServiceRuntime("units", UnitsSettings(), topology=ALL_CONSUMER_QUEUES)
    units_events.register_consumers(units)
    for runtime in (dispatch, units):
        consumed += [consumer.spec.name for consumer in runtime.consumers]
        assert runtime.queues() == list(ALL_CONSUMER_QUEUES)
    assert consumed == [
        "dispatch.unit-events",
        "units.demand-events",
        "units.private",
        "units.zone-events",
    ]


async def _ignore(event: Incoming[Any]) -> None:
    pass


@pytest.mark.unit
def test_start_up_refuses_a_queue_the_system_topology_lacks() -> None:
    runtime = ServiceRuntime(
        "units", WhistleSettings(env="development"), topology=ALL_CONSUMER_QUEUES
    )
    wiring = {**units_events.PRIVATE_EVENTS}
    forgotten = ConsumerQueue.of("units", "forgotten", wiring)
    with pytest.raises(ValueError, match=r"units\.forgotten, which is missing from"):
        runtime.consume(forgotten, exactly_once(runtime.uow, forgotten, wiring))
    assert runtime.consumers == []


@pytest.mark.unit
def test_start_up_refuses_a_queue_declared_otherwise_in_the_system_topology() -> None:
    """A map grown in one service while the topology handed to the runtime is another (an
    old list): the other services would not bind the new type, so it does not start."""
    runtime = ServiceRuntime(
        "units", WhistleSettings(env="development"), topology=ALL_CONSUMER_QUEUES
    )
    stale = units_events.UNITS_DEMAND_EVENTS
    grown = ConsumerQueue(stale.service, stale.purpose, (*stale.events, DemandReopened))
    with pytest.raises(ValueError, match=r"units\.demand-events, which is declared otherwise"):
        runtime.consume(grown, dict.fromkeys(grown.events, _ignore))
    assert runtime.consumers == []


# --- one more entry in a map is all it takes --------------------------------------------------


@pytest.fixture
async def grown(
    brokers: Brokers, mongodb_url: str
) -> AsyncIterator[tuple[ServiceRuntime, list[str]]]:
    """Units' demand map as written, with one entry more: `DemandReopened`, an event units
    does not consume today. Nothing else is edited: the queue is built from the map."""
    seen: list[str] = []

    async def on_demand_reopened(tx: Tx, event: Incoming[DemandReopened]) -> None:
        seen.append(f"{event.data.demand_id} {event.data.filled}/{event.data.slots}")

    wiring: Wiring[UnitsSettings] = {
        **units_events.DEMAND_EVENTS,
        DemandReopened: on_demand_reopened,
    }
    # A test-only name, so the test does not bind the system's `units.demand-events`.
    spec = ConsumerQueue.of("tests", f"grown-{uuid.uuid4().hex[:6]}", wiring)
    settings = UnitsSettings(
        mongodb_url=mongodb_url, rabbitmq_url=brokers.url, db_prefix=f"grown{uuid.uuid4().hex[:6]}_"
    )
    runtime = ServiceRuntime("units", settings)
    runtime.consume(spec, exactly_once(runtime.uow, spec, configure(wiring, settings)))
    try:
        async with brokers.running(runtime.broker, spec):
            yield runtime, seen
    finally:
        await runtime.client.drop_database(runtime.db.name)
        await runtime.client.close()


async def test_one_more_entry_in_a_map_binds_its_queue_to_that_event(
    brokers: Brokers, grown: tuple[ServiceRuntime, list[str]]
) -> None:
    runtime, seen = grown
    (spec,) = [consumer.spec for consumer in runtime.consumers]
    assert spec.routing_keys == (*units_events.UNITS_DEMAND_EVENTS.routing_keys, "demand.reopened")
    reopened = event_of(
        DemandReopened(demand_id="dem_g1", community_id="com_g", filled=2, slots=3),
        subject="dem_g1",
    )
    await brokers.deliver(runtime.broker, reopened, to=runtime.consumers)
    await brokers.deliver(runtime.broker, reopened, to=runtime.consumers)  # a redelivery
    assert seen == ["dem_g1 2/3"]  # routed to the new handler, applied once


@pytest.mark.unit
async def test_a_map_entry_built_from_the_config_gets_the_services_settings() -> None:
    got: list[float] = []

    async def work(tx: Tx, event: Incoming[Any], step: float) -> None:
        got.append(step)

    wiring: Wiring[DispatchSettings] = {
        DemandCompleted: Configured(lambda s: partial(work, step=s.escalation_step_s))
    }
    works = configure(wiring, DispatchSettings(escalation_step_s=7.5))
    assert set(works) == {DemandCompleted}
    await works[DemandCompleted](cast(Tx, None), cast(Incoming[Any], None))
    assert got == [7.5]
