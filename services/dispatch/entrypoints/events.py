"""Dispatch's AMQP side and timers: units' events keep `filled` and `status` current; stored
timers run the escalation ladder and expiry."""

from functools import partial

from services.dispatch.adapters import reach
from services.dispatch.config import DispatchSettings
from services.dispatch.handlers import events, timers
from shared.broker.consumer import EventHandler
from shared.broker.topology import DISPATCH_UNIT_EVENTS
from shared.events.catalogue import parse_data
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

CONSUMER = DISPATCH_UNIT_EVENTS.name
UNITS_FACT_MODELS = {model.TYPE: model for model in events.UNITS_FACTS}


def register_consumers(runtime: ServiceRuntime, settings: DispatchSettings) -> None:
    async def on_units_fact(event: CloudEvent) -> None:
        # Parsed before the transaction: data that does not fit is poison (dead-lettered).
        data = parse_data(UNITS_FACT_MODELS[event.type], event.data)

        async def apply(tx: Tx) -> None:
            await events.on_units_fact(tx, event, data, settings.escalation_step_s)

        await runtime.uow.run_once(CONSUMER, event, apply)

    async def on_registration(event: CloudEvent) -> None:
        data = reach.Registration.model_validate(event.data)

        async def apply(tx: Tx) -> None:
            await events.on_registration(tx, event.type, data)

        await runtime.uow.run_once(CONSUMER, event, apply)

    routes: dict[str, EventHandler] = dict.fromkeys(UNITS_FACT_MODELS, on_units_fact)
    routes |= dict.fromkeys(reach.REGISTRATIONS, on_registration)
    runtime.consume(DISPATCH_UNIT_EVENTS, routes)
    runtime.on_timer(
        timers.ESCALATE, partial(timers.escalate, default_step_s=settings.escalation_step_s)
    )
    runtime.on_timer(timers.EXPIRE, partial(timers.expire, grace_s=settings.completion_grace_s))
