"""Audit's AMQP side: every event on the exchange (`#`) goes to the recorder."""

from services.audit.handlers import EventRecorder, HeadPinning
from shared.broker.consumer import CATCH_ALL
from shared.broker.topology import AUDIT_EVENTS
from shared.runtime import ServiceRuntime


def register_consumers(runtime: ServiceRuntime, pinning: HeadPinning | None = None) -> None:
    recorder = EventRecorder(runtime.uow, pinning)
    runtime.consume(AUDIT_EVENTS, {CATCH_ALL: recorder.record})
