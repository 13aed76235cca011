"""Audit's AMQP side: every event on the exchange (`#`) goes to the recorder."""

from services.audit.handlers import EventRecorder
from shared.broker.consumer import CATCH_ALL
from shared.broker.topology import AUDIT_EVENTS
from shared.runtime import ServiceRuntime


def register_consumers(runtime: ServiceRuntime) -> None:
    recorder = EventRecorder(runtime.uow)
    runtime.consume(AUDIT_EVENTS, {CATCH_ALL: recorder.record})
