"""Audit's AMQP side: every event on the exchange (`#`) goes to the recorder."""

from faststream.rabbit import RabbitBroker

from services.audit.handlers import CurrentDelivery, Delivery, EventRecorder, HeadPinning, appender
from shared.broker.consumer import CATCH_ALL
from shared.broker.topology import AUDIT_EVENTS
from shared.runtime import ServiceRuntime


def delivery_of(broker: RabbitBroker) -> CurrentDelivery:
    """The message being handled: FastStream keeps it in its per-message context."""

    def current() -> Delivery:
        message = broker.context.get_local("message")
        raw = getattr(message, "raw_message", None)
        tag = getattr(raw, "delivery_tag", None)
        body = getattr(raw, "body", None)
        return Delivery(
            tag if isinstance(tag, int) else None, body if isinstance(body, bytes) else None
        )

    return current


def register_consumers(runtime: ServiceRuntime, pinning: HeadPinning | None = None) -> None:
    recorder = EventRecorder(appender(runtime.uow), pinning, delivery=delivery_of(runtime.broker))
    runtime.consume(AUDIT_EVENTS, {CATCH_ALL: recorder.record})
