"""`docs/asyncapi.json`: AsyncAPI 3.0 of the events, from the catalogue and the topology.

Built here rather than by `faststream docs gen`: the services publish through the outbox
relay, not through FastStream publisher objects, so FastStream would see only the consumers,
and it names a queue channel after its first routing key. Everything said of an event (its
producer, subject, when it is emitted, its version) is what its catalogue model declares.
"""

from collections.abc import Iterable
from typing import Any

from services.cli.docs.routing import receives
from services.cli.docs.schemas import SCHEMA_REF, event_schemas
from services.topology import ALL_CONSUMER_QUEUES
from shared.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    exchange_for,
)
from shared.events.catalogue import CATALOGUE, EventData

CONTENT_TYPE = "application/cloudevents+json"
AMQP_BINDING_VERSION = "0.3.0"


def _message_name(model: type[EventData]) -> str:
    return model.__name__


def _message(event_type: str, model: type[EventData]) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": event_type,
        "summary": model.WHEN,
        "contentType": CONTENT_TYPE,
        "correlationId": {
            "description": "the demand the flow belongs to",
            "location": "$message.payload#/correlationid",
        },
        "payload": {
            "allOf": [
                {"$ref": SCHEMA_REF.format(model="CloudEvent")},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event_type},
                        "source": {"const": f"/whistle/{model.PRODUCER}"},
                        "subject": {"type": "string", "description": model.SUBJECT},
                        "dataversion": {"const": model.DATAVERSION},
                        "data": {"$ref": SCHEMA_REF.format(model=model.__name__)},
                    },
                },
            ]
        },
        "bindings": {"amqp": {"messageType": event_type, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _queue_binding(name: str) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "queue",
            "queue": {
                "name": name,
                "durable": True,
                "exclusive": False,
                "autoDelete": False,
                "vhost": "/",
            },
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _message_refs(event_types: Iterable[str]) -> dict[str, Any]:
    return {
        _message_name(CATALOGUE[t]): {
            "$ref": f"#/components/messages/{_message_name(CATALOGUE[t])}"
        }
        for t in event_types
    }


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event_type, model in CATALOGUE.items():
        producer = model.PRODUCER
        name = _message_name(model)
        exchange = {
            "name": exchange_for(event_type).name,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        }
        channels[event_type] = {
            "address": event_type,
            "title": event_type,
            "description": (
                f"Published by {producer} to `{exchange['name']}` with routing key "
                f"`{event_type}` when {model.WHEN}."
            ),
            "messages": _message_refs([event_type]),
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": exchange,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
        operations[f"{producer}.sends.{event_type}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{event_type}"},
            "title": f"{producer} publishes {event_type}",
            "summary": "Through the outbox relay, persistent, with publisher confirms.",
            "messages": [{"$ref": f"#/channels/{event_type}/messages/{name}"}],
            "bindings": {
                "amqp": {
                    "deliveryMode": 2,
                    "mandatory": True,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
    for spec in ALL_CONSUMER_QUEUES:
        received = [t for t in CATALOGUE if receives(spec, t)]
        key = f"queue.{spec.name}"
        channels[key] = {
            "address": spec.name,
            "title": spec.name,
            "description": (
                f"{spec.service}'s quorum queue, bound to `{spec.exchange_name}` with "
                f"{', '.join(f'`{k}`' for k in spec.routing_keys)}. A message whose handler "
                f"failed {spec.max_attempts} times (counted by Whistle in `x-whistle-attempt`) "
                f"or that was redelivered more than {spec.delivery_limit} times after a "
                f"consumer died is dead-lettered to `{spec.dead_letter_name}` through "
                f"`{DEAD_LETTER_EXCHANGE.name}`."
            ),
            "messages": _message_refs(received),
            "bindings": _queue_binding(spec.name),
        }
        channels[f"queue.{spec.dead_letter_name}"] = {
            "address": spec.dead_letter_name,
            "title": spec.dead_letter_name,
            "description": (
                f"Dead letters of `{spec.name}`: poison messages and those returned more "
                f"often than its delivery limit ({spec.delivery_limit}), kept for an operator."
            ),
            "messages": _message_refs(received),
            "bindings": _queue_binding(spec.dead_letter_name),
        }
        operations[f"{spec.service}.receives.{spec.name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "title": f"{spec.service} consumes {spec.name}",
            "summary": (
                "Idempotent by event id; acked after the effect is committed; a poison message "
                "is rejected to the dead-letter queue, a failure is retried with backoff."
            ),
            "messages": [
                {"$ref": f"#/channels/{key}/messages/{_message_name(CATALOGUE[t])}"}
                for t in received
            ],
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        }
    messages = {_message_name(model): _message(t, model) for t, model in CATALOGUE.items()}
    return {
        "asyncapi": "3.0.0",
        "id": "urn:whistle:events",
        "info": {
            "title": "Whistle events",
            "version": "1.0.0",
            "description": (
                "Every state change in Whistle is a CloudEvents 1.0 event (structured JSON mode) "
                f"on the durable topic exchange `{EVENTS_EXCHANGE.name}`; the routing key is the "
                "event type. `data` is versioned by the `dataversion` extension."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "pathname": "/",
                "description": "RabbitMQ at RABBITMQ_URL (this is the default).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": event_schemas()},
    }
