"""Every consumer queue in the system, collected from the services' own declarations.

A queue is declared beside its service's handler map, from the map's keys
(`services/<service>/entrypoints/events.py`: `ConsumerQueue.of(...)`), so that the map is
the one place to add a consumed event type. Each service still declares every queue at
start-up (it passes `ALL_CONSUMER_QUEUES` to its `ServiceRuntime`), so an event is never
unroutable, and so never lost, because its consumer has not started yet.

Only this module and the services' bootstraps import it, and no `entrypoints/events.py`
imports another service or this module: there is no cycle. `shared/` never imports it (the
runtime is handed the queues). A service's runtime refuses, at start-up, to consume a queue
missing here or declared otherwise, so a new queue cannot be left out unnoticed.
"""

from services.audit.entrypoints import events as audit
from services.dispatch.entrypoints import events as dispatch
from services.notify.entrypoints import events as notify
from services.units.entrypoints import events as units
from shared.broker.topology import PRIVATE_EXCHANGE, ConsumerQueue

# The audited channel's queues first, then the private one's (the docs list them so).
ALL_CONSUMER_QUEUES: tuple[ConsumerQueue, ...] = tuple(
    sorted(
        (*dispatch.QUEUES, *units.QUEUES, *notify.QUEUES, *audit.QUEUES),
        key=lambda spec: spec.exchange_name == PRIVATE_EXCHANGE.name,
    )
)
