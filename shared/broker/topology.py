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

The queues themselves are not listed here: each consumer's handler map, keyed by catalogue
model, is the one declaration of what it receives, and its queue is built from the map's keys
(`ConsumerQueue.of`) beside the map, in the service's `entrypoints/events.py`.
`services/topology.py` collects every service's queues (`ALL_CONSUMER_QUEUES`), and each
service hands that to its `ServiceRuntime` so it declares every queue at start-up.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from shared.events.catalogue import EventData, is_private

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


class BoundQueue(RabbitQueue):
    """A RabbitQueue that knows all its bindings, not only the one FastStream binds.

    FastStream binds a subscriber's queue with one routing key; `declare_topology` binds the
    rest on the real broker. The in-memory test broker only sees the first, so the test
    support (tests/support/brokers.py) reads `bindings` to route as the real broker does."""

    bindings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsumerQueue:
    """One consumer's queue, declared by the catalogue models it receives.

    The routing keys are the models' `TYPE`s, and the exchange follows from their `PRIVATE`
    (a queue never mixes the audited and the private channel). A service's handler map must
    name exactly these models (`shared.broker.consumer.EventConsumer` checks at start-up);
    built with `ConsumerQueue.of(service, purpose, handler_map)` it does by construction.
    """

    service: str
    purpose: str
    events: tuple[type[EventData], ...]
    # Handler runs before the message is dead-lettered, counted by Whistle (see consumer).
    max_attempts: int = 5
    # The broker's backstop (`x-delivery-limit`): bounds redeliveries after a consumer died
    # mid-message, which every RabbitMQ version counts. Not the retry bound for failures.
    delivery_limit: int = 5
    exchange_name: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.events:
            raise ValueError(f"{self.service}.{self.purpose}: a queue receives some event")
        if len(set(self.events)) != len(self.events):
            raise ValueError(f"{self.service}.{self.purpose}: an event is listed twice")
        private = {model.PRIVATE for model in self.events}
        if len(private) != 1:
            raise ValueError(
                f"{self.service}.{self.purpose} mixes private and audited events: "
                "they travel on different exchanges"
            )
        exchange = PRIVATE_EXCHANGE if private == {True} else EVENTS_EXCHANGE
        object.__setattr__(self, "exchange_name", exchange.name)

    @classmethod
    def of(
        cls, service: str, purpose: str, handlers: Mapping[type[EventData], Any], **limits: int
    ) -> Self:
        """The queue receiving exactly the models `handlers` is keyed by, in the map's order:
        adding an entry to a consumer's map is what binds its queue to one more type."""
        return cls(service, purpose, tuple(handlers), **limits)

    @property
    def routing_keys(self) -> tuple[str, ...]:
        return tuple(model.TYPE for model in self.events)

    @property
    def exchange(self) -> RabbitExchange:
        return EXCHANGES[self.exchange_name]

    @property
    def name(self) -> str:
        return f"{self.service}.{self.purpose}"

    @property
    def dead_letter_name(self) -> str:
        return f"{self.name}.dlq"

    def queue(self) -> BoundQueue:
        # The first key binds through FastStream; the rest are bound after start (see runtime).
        queue = BoundQueue(
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
        queue.bindings = self.routing_keys
        return queue

    def dead_letter_queue(self) -> RabbitQueue:
        return RabbitQueue(
            self.dead_letter_name,
            durable=True,
            queue_type=QueueType.QUORUM,
            routing_key=self.name,
        )
