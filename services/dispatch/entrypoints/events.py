"""Dispatch's AMQP side: which events it consumes, and the handler for each."""

from shared.runtime import ServiceRuntime


def register_consumers(runtime: ServiceRuntime) -> None:
    """Dispatch keeps `filled` and `status` current from units' events (see the lifecycle issue)."""
