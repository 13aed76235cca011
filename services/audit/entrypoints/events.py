"""Audit's AMQP side: every event on the exchange (`#`) goes to the recorder."""

from faststream.rabbit import RabbitBroker

from services.audit.handlers import DeliveryTag, EventRecorder, HeadPinning, appender
from shared.broker.consumer import CATCH_ALL
from shared.broker.topology import AUDIT_EVENTS
from shared.runtime import ServiceRuntime


def delivery_tag_of(broker: RabbitBroker) -> DeliveryTag:
    """The delivery tag of the message being handled (FastStream keeps it in its context)."""

    def current() -> int | None:
        message = broker.context.get_local("message")
        tag = getattr(getattr(message, "raw_message", None), "delivery_tag", None)
        return tag if isinstance(tag, int) else None

    return current


def register_consumers(runtime: ServiceRuntime, pinning: HeadPinning | None = None) -> None:
    recorder = EventRecorder(
        appender(runtime.uow), pinning, delivery_tag=delivery_tag_of(runtime.broker)
    )
    runtime.consume(AUDIT_EVENTS, {CATCH_ALL: recorder.record})
