"""Which consumer queues receive which event types, as RabbitMQ's topic routing decides."""

from services.topology import ALL_CONSUMER_QUEUES
from shared.broker.topology import ConsumerQueue, exchange_for


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` is zero or more."""

    def match(pattern_words: list[str], key_words: list[str]) -> bool:
        if not pattern_words:
            return not key_words
        head, rest = pattern_words[0], pattern_words[1:]
        if head == "#":
            return any(match(rest, key_words[skip:]) for skip in range(len(key_words) + 1))
        if not key_words:
            return False
        return (head in ("*", key_words[0])) and match(rest, key_words[1:])

    return match(pattern.split("."), routing_key.split("."))


def receives(spec: ConsumerQueue, event_type: str) -> bool:
    if spec.exchange_name != exchange_for(event_type).name:
        return False  # a queue on whistle.events never sees whistle.private
    return any(topic_matches(key, event_type) for key in spec.routing_keys)


def queues_receiving(event_type: str) -> list[ConsumerQueue]:
    return [spec for spec in ALL_CONSUMER_QUEUES if receives(spec, event_type)]
