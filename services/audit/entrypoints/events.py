"""Audit's AMQP side: every event on the exchange (`#`) goes to the recorder."""

from faststream.rabbit import RabbitBroker

from services.audit.domain.partitions import PartitionBy
from services.audit.handlers.events import CurrentDelivery, Delivery, recorder_for
from services.audit.handlers.timers import Checkpointing
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


def register_consumers(
    runtime: ServiceRuntime,
    checkpointing: Checkpointing | None = None,
    partition_by: PartitionBy = PartitionBy.DISTRICT,
) -> None:
    record = recorder_for(runtime.uow, checkpointing, partition_by, delivery_of(runtime.broker))
    runtime.consume(AUDIT_EVENTS, {CATCH_ALL: record})
