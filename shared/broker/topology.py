"""The broker topology every service declares the same way.

- one durable topic exchange `whistle.events`, routing key = event type;
- one durable quorum queue per consumer, named `<service>.<purpose>`, bound to the event types
  it handles, dead-lettering to `whistle.dead` after a bounded number of deliveries;
- one dead-letter queue per consumer queue, `<service>.<purpose>.dlq`, bound to `whistle.dead`
  with the consumer queue's name as its routing key;
- one durable topic exchange `whistle.private` for the events that carry personal data
  (`PRIVATE` in the catalogue: `volunteer.details`, `unit.details`, `demand.details`). Its
  queues are quorum queues with the same dead-letter route; audit is not bound to it, so what
  passes there never enters the permanent log and can be erased.
"""

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from shared.events.catalogue import is_private

EVENTS_EXCHANGE = RabbitExchange("whistle.events", type=ExchangeType.TOPIC, durable=True)
DEAD_LETTER_EXCHANGE = RabbitExchange("whistle.dead", type=ExchangeType.DIRECT, durable=True)
PRIVATE_EXCHANGE = RabbitExchange("whistle.private", type=ExchangeType.TOPIC, durable=True)
EXCHANGES: dict[str, RabbitExchange] = {
    EVENTS_EXCHANGE.name: EVENTS_EXCHANGE,
    PRIVATE_EXCHANGE.name: PRIVATE_EXCHANGE,
}


def exchange_for(event_type: str) -> RabbitExchange:
    """Where an event is published: personal details to `whistle.private`, all else audited."""
    return PRIVATE_EXCHANGE if is_private(event_type) else EVENTS_EXCHANGE


@dataclass(frozen=True)
class ConsumerQueue:
    service: str
    purpose: str
    routing_keys: tuple[str, ...]
    # Handler runs before the message is dead-lettered, counted by Whistle (see consumer).
    max_attempts: int = 5
    # The broker's backstop (`x-delivery-limit`): bounds redeliveries after a consumer died
    # mid-message, which every RabbitMQ version counts. Not the retry bound for failures.
    delivery_limit: int = 5
    exchange_name: str = EVENTS_EXCHANGE.name

    @property
    def exchange(self) -> RabbitExchange:
        return EXCHANGES[self.exchange_name]

    @property
    def name(self) -> str:
        return f"{self.service}.{self.purpose}"

    @property
    def dead_letter_name(self) -> str:
        return f"{self.name}.dlq"

    def queue(self) -> RabbitQueue:
        # The first key binds through FastStream; the rest are bound after start (see runtime).
        return RabbitQueue(
            self.name,
            durable=True,
            queue_type=QueueType.QUORUM,
            routing_key=self.routing_keys[0],
            arguments={
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
                "x-dead-letter-routing-key": self.name,
                "x-delivery-limit": self.delivery_limit,
            },
        )

    def dead_letter_queue(self) -> RabbitQueue:
        return RabbitQueue(
            self.dead_letter_name,
            durable=True,
            queue_type=QueueType.QUORUM,
            routing_key=self.name,
        )


# Every consumer queue in the system. Each service declares all of them at start-up, so an
# event is never unroutable (and so never lost) because its consumer has not started yet.
DISPATCH_UNIT_EVENTS = ConsumerQueue(
    "dispatch",
    "unit-events",
    (
        "demand.filled",
        "demand.reopened",
        "claim.accepted",
        "claim.promoted",
        "claim.withdrawn",
        "claim.released",
        "claim.checked_in",
        # Who serves which community: dispatch scopes volunteers' and units' reads by it.
        "unit.registered",
        "volunteer.registered",
    ),
)
UNITS_DEMAND_EVENTS = ConsumerQueue(
    "units",
    "demand-events",
    (
        "community.registered",
        "demand.published",
        "demand.escalated",
        "demand.cancelled",
        "demand.completed",
        "demand.expired",
    ),
)
NOTIFY_EVENTS = ConsumerQueue(
    "notify",
    "events",
    (
        "demand.*",
        "claim.*",
        "community.registered",
        "unit.registered",
        "unit.updated",
        "volunteer.registered",
        "volunteer.updated",
        "volunteer.erased",
    ),
)
AUDIT_EVENTS = ConsumerQueue("audit", "events", ("#",))
# The private channel: audit has no queue here.
UNITS_PRIVATE = ConsumerQueue(
    "units", "private", ("demand.details",), exchange_name=PRIVATE_EXCHANGE.name
)
NOTIFY_PRIVATE = ConsumerQueue(
    "notify", "private", ("unit.details", "volunteer.details"), exchange_name=PRIVATE_EXCHANGE.name
)

ALL_CONSUMER_QUEUES: tuple[ConsumerQueue, ...] = (
    DISPATCH_UNIT_EVENTS,
    UNITS_DEMAND_EVENTS,
    NOTIFY_EVENTS,
    AUDIT_EVENTS,
    UNITS_PRIVATE,
    NOTIFY_PRIVATE,
)
