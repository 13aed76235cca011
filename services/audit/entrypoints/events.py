"""Audit's AMQP side: every audited event type goes to the recorder, which gets each as the
consumer read it (`Incoming`: the envelope, and the producer's body to store and hash)."""

from services.audit.domain.partitions import PartitionBy
from services.audit.handlers.events import EventRecorder, MongoLog
from services.audit.handlers.timers import Checkpointing
from shared.broker.consumer import HandlerMap
from shared.broker.topology import ConsumerQueue
from shared.events.catalogue import public_models
from shared.runtime import ServiceRuntime

# Audit records every audited event: its queue is bound to each public type by name, so a new
# public model in the catalogue reaches the log without an edit here. (The private channel has
# no audit queue.)
AUDIT_EVENTS = ConsumerQueue("audit", "events", public_models())

QUEUES = (AUDIT_EVENTS,)


def register_consumers(
    runtime: ServiceRuntime,
    checkpointing: Checkpointing | None = None,
    partition_by: PartitionBy = PartitionBy.DISTRICT,
) -> EventRecorder:
    recorder = EventRecorder(MongoLog(runtime.uow), checkpointing, partition_by=partition_by)
    # One handler for every type: audit records them all alike (the queue is bound to each
    # public model, and the consumer checks this map names exactly those).
    handlers: HandlerMap = dict.fromkeys(AUDIT_EVENTS.events, recorder.record)
    runtime.consume(AUDIT_EVENTS, handlers)
    return recorder
