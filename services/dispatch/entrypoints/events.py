"""Dispatch's AMQP side and timers: units' events keep `filled` and `status` current; stored
timers run the escalation ladder and expiry."""

from functools import partial

from services.dispatch import handlers
from services.dispatch.adapters import reach
from services.dispatch.config import DispatchSettings
from shared.broker.consumer import EventHandler
from shared.broker.topology import DISPATCH_UNIT_EVENTS
from shared.events.catalogue import ClaimData, parse_data
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

CONSUMER = DISPATCH_UNIT_EVENTS.name


def register_consumers(runtime: ServiceRuntime, settings: DispatchSettings) -> None:
    async def on_units_event(event: CloudEvent) -> None:
        model = handlers.UNITS_EVENT_MODELS[event.type]
        # Parsed before the transaction: data that does not fit is poison (dead-lettered).
        data = parse_data(model, event.data)

        async def apply(tx: Tx) -> None:
            await handlers.apply_units_event(tx, event, data, settings.escalation_step_s)
            if isinstance(data, ClaimData):
                await reach.record_claim(tx, data, handlers.claimant_state(data))

        await runtime.uow.run_once(CONSUMER, event, apply)

    async def on_registration(event: CloudEvent) -> None:
        data = reach.Registration.model_validate(event.data)

        async def apply(tx: Tx) -> None:
            await reach.record_registration(tx, event.type, data)

        await runtime.uow.run_once(CONSUMER, event, apply)

    routes: dict[str, EventHandler] = dict.fromkeys(handlers.UNITS_EVENT_MODELS, on_units_event)
    routes |= dict.fromkeys(reach.REGISTRATIONS, on_registration)
    runtime.consume(DISPATCH_UNIT_EVENTS, routes)
    runtime.on_timer(
        handlers.ESCALATE, partial(handlers.escalate, default_step_s=settings.escalation_step_s)
    )
    runtime.on_timer(handlers.EXPIRE, partial(handlers.expire, grace_s=settings.completion_grace_s))
