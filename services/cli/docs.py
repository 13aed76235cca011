"""`python -m services.cli.docs docs`: the reference documents in docs/, generated from the code.

- `docs/openapi/<service>.json`: each service's OpenAPI, from its FastAPI app, built with
  `build_app(load_settings())` but never started (no broker, no database);
- `docs/asyncapi.json`: AsyncAPI 3.0 of the events, from the catalogue's data models and the
  broker topology (built here rather than by `faststream docs gen`: the services publish through
  the outbox relay, not through FastStream publisher objects, so FastStream would see only the
  consumers, and it names a queue channel after its first routing key);
- `docs/README.md`: the index a person reads: the envelope, every event, the topology, the
  HTTP endpoints.

`python -m services.cli.docs check` exits 1 when the committed documents differ from what the
code generates now.
"""

import difflib
import importlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.cli.registry import APIS, SERVICES
from shared.broker.topology import (
    ALL_CONSUMER_QUEUES,
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    PRIVATE_EXCHANGE,
    ConsumerQueue,
    exchange_for,
)
from shared.events.catalogue import CATALOGUE, EventData
from shared.events.envelope import CloudEvent

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "docs"
CONTENT_TYPE = "application/cloudevents+json"
AMQP_BINDING_VERSION = "0.3.0"
SCHEMA_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class EventNote:
    producer: str
    when: str
    subject: str


_DEMAND = "the demand id"

# What the catalogue's models cannot say: who emits each event, when, and what its subject is.
EVENT_NOTES: dict[str, EventNote] = {
    "community.registered": EventNote(
        "dispatch",
        "an admin registers a community with its street and district",
        "the community id",
    ),
    "demand.published": EventNote("dispatch", "the whistle: a secretary posts a demand", _DEMAND),
    "demand.escalated": EventNote(
        "dispatch",
        "`fill_by` passed with slots still open: community -> street -> district",
        _DEMAND,
    ),
    "demand.cancelled": EventNote("dispatch", "the secretary cancels the demand", _DEMAND),
    "demand.completed": EventNote("dispatch", "the secretary confirms the work done", _DEMAND),
    "demand.expired": EventNote(
        "dispatch", "`ends_at` passed before the secretary completed the demand", _DEMAND
    ),
    "demand.filled": EventNote("units", "the last open slot is taken", _DEMAND),
    "demand.reopened": EventNote("units", "a slot of a filled demand opens again", _DEMAND),
    "unit.registered": EventNote("units", "an admin registers a stationed unit", "the unit id"),
    "volunteer.registered": EventNote(
        "units", "an admin or the community's secretary registers a volunteer", "the volunteer id"
    ),
    "claim.accepted": EventNote(
        "units", "a claimant reports for the demand and gets slots", _DEMAND
    ),
    "claim.waitlisted": EventNote(
        "units", "a claimant asked to wait for a full demand (`waitlist: true`)", _DEMAND
    ),
    "claim.promoted": EventNote("units", "a waitlisted claim gets the slots that opened", _DEMAND),
    "claim.withdrawn": EventNote("units", "the claimant withdraws", _DEMAND),
    "claim.released": EventNote(
        "units", "the demand was cancelled: every claim holding or awaiting a place", _DEMAND
    ),
    "claim.checked_in": EventNote(
        "units", "the claimant checks in on site with the demand's code (the report)", _DEMAND
    ),
    "claim.completed": EventNote("units", "the claimant reports the work done", _DEMAND),
    "claim.no_show": EventNote("units", "`ends_at` passed without a check-in", _DEMAND),
    "unit.updated": EventNote(
        "units", "an admin corrects a unit's record (`PATCH /v1/units/{id}`)", "the unit id"
    ),
    "volunteer.updated": EventNote(
        "units",
        "an admin or the community's secretary corrects a volunteer (`PATCH /v1/volunteers/{id}`)",
        "the volunteer id",
    ),
    "volunteer.erased": EventNote(
        "units",
        "an admin or the community's secretary erases a volunteer (`DELETE /v1/volunteers/{id}`);"
        " ids only, their details are gone from every service",
        "the volunteer id",
    ),
    "demand.details": EventNote(
        "dispatch",
        "with every `demand.published`: the description and exact place, on `whistle.private` "
        "only (never audited)",
        _DEMAND,
    ),
    "unit.details": EventNote(
        "units",
        "a unit is registered or corrected, or its webhook secret rotated: its contact and "
        "webhook secret, on `whistle.private` only (never audited)",
        "the unit id",
    ),
    "volunteer.details": EventNote(
        "units",
        "a volunteer is registered or corrected, or their webhook secret rotated: name, "
        "building, contact and webhook secret, on `whistle.private` only (never audited)",
        "the volunteer id",
    ),
    "notification.sent": EventNote(
        "notify", "one delivery on one channel succeeded", "the notification id"
    ),
    "notification.failed": EventNote(
        "notify",
        "one delivery on one channel gave up after its retries",
        "the notification id",
    ),
}

_UNDOCUMENTED = EventNote(
    "?", "not documented yet: add it to EVENT_NOTES in services/cli/docs.py", "?"
)


def note_for(event_type: str) -> EventNote:
    return EVENT_NOTES.get(event_type, _UNDOCUMENTED)


# --- routing -------------------------------------------------------------------------------


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
        return False  # audit's `#` on whistle.events never sees whistle.private
    return any(topic_matches(key, event_type) for key in spec.routing_keys)


def queues_receiving(event_type: str) -> list[ConsumerQueue]:
    return [spec for spec in ALL_CONSUMER_QUEUES if receives(spec, event_type)]


# --- AsyncAPI ------------------------------------------------------------------------------


def _message_name(model: type[EventData]) -> str:
    return model.__name__


def _event_schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [CloudEvent, *CATALOGUE.values()]
    _, definitions = models_json_schema(
        [(model, "serialization") for model in models], ref_template=SCHEMA_REF
    )
    schemas: dict[str, Any] = definitions["$defs"]
    return dict(sorted(schemas.items()))


def _message(event_type: str, model: type[EventData]) -> dict[str, Any]:
    note = note_for(event_type)
    return {
        "name": event_type,
        "title": event_type,
        "summary": note.when,
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
                        "source": {"const": f"/whistle/{note.producer}"},
                        "subject": {"type": "string", "description": note.subject},
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
        note = note_for(event_type)
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
                f"Published by {note.producer} to `{exchange['name']}` with routing key "
                f"`{event_type}` when {note.when}."
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
        operations[f"{note.producer}.sends.{event_type}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{event_type}"},
            "title": f"{note.producer} publishes {event_type}",
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
        "components": {"messages": messages, "schemas": _event_schemas()},
    }


# --- OpenAPI -------------------------------------------------------------------------------


@dataclass
class OpenApiDocuments:
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # service -> why


def openapi_documents() -> OpenApiDocuments:
    """Each service's OpenAPI; a service whose bootstrap module does not exist yet is skipped."""
    found = OpenApiDocuments()
    for name, entry in APIS.items():
        try:
            bootstrap = importlib.import_module(entry.module)
        except ModuleNotFoundError as missing:
            if missing.name is None or not entry.module.startswith(missing.name):
                raise  # the bootstrap exists but imports something missing: a real bug
            found.skipped[name] = f"{entry.module} does not exist yet"
            continue
        app = bootstrap.build_app(bootstrap.load_settings())
        found.documents[name] = app.openapi()
    return found


# --- the index (docs/README.md) ------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _schema_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in prop:
        options = [option for option in prop["anyOf"] if option.get("type") != "null"]
        nullable = len(options) < len(prop["anyOf"])
        text = " or ".join(_schema_type(option) for option in options)
        return f"{text} or null" if nullable else text
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " | ".join(f"`{json.dumps(value)}`" for value in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(prop.get('items', {}))}"
    if kind == "string" and prop.get("format") == "date-time":
        return "date-time (RFC 3339)"
    return str(kind)


def _fields_table(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", ()))
    lines = ["| field | type | required | default |", "| --- | --- | --- | --- |"]
    for name, prop in schema.get("properties", {}).items():
        default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
        lines.append(
            f"| `{name}` | {_cell(_schema_type(prop))} | {'yes' if name in required else 'no'} "
            f"| {_cell(default)} |"
        )
    return lines


_ENVELOPE = """\
Every event is a CloudEvents 1.0 JSON document (structured mode, content type
`application/cloudevents+json`), published persistent and with publisher confirms to the
durable topic exchange `{exchange}` with the event type as routing key.

| attribute | meaning |
| --- | --- |
| `specversion` | `"1.0"` |
| `id` | unique event id: consumers are idempotent by it |
| `source` | the producing service, e.g. `/whistle/dispatch` |
| `type` | the event type (below) and routing key |
| `subject` | what the event is about (see each event) |
| `time` | when it happened, RFC 3339 |
| `datacontenttype` | `"application/json"` |
| `data` | the event's fields (below) |
| `correlationid` | the demand the flow belongs to (the subject's id for registry events) |
| `causationid` | id of the event or HTTP request that caused this one |
| `actor` | the token's `sub`, or the service for automatic events |
| `dataversion` | schema version of `data`, from 1; consumers ignore fields they do not know |
"""


def render_index(openapi: dict[str, dict[str, Any]]) -> str:
    schemas = _event_schemas()
    out: list[str] = [
        "# Whistle reference: HTTP APIs and events",
        "",
        "Generated from the code by `make docs` (`python -m services.cli.docs docs`); do not",
        "edit by hand. A unit test (`tests/deploy/test_docs.py`) fails when these files are",
        "stale.",
        "",
        "## Files",
        "",
    ]
    for name, entry in SERVICES.items():
        if name in openapi:
            out.append(
                f"- [`openapi/{name}.json`](openapi/{name}.json): the {name} service's HTTP "
                f"API (OpenAPI {openapi[name].get('openapi', '3')}); while it runs, also at "
                f"`http://localhost:{entry.default_port}/docs`."
            )
    out += [
        "- [`asyncapi.json`](asyncapi.json): the events on the broker (AsyncAPI 3.0): one "
        "channel per event type, one per consumer queue and dead-letter queue.",
        "",
        "## The envelope",
        "",
        _ENVELOPE.format(exchange=EVENTS_EXCHANGE.name),
        "## Events",
        "",
        "| type | producer | when | subject | dataversion | consumer queues |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for event_type, model in CATALOGUE.items():
        note = note_for(event_type)
        consumers = ", ".join(f"`{spec.name}`" for spec in queues_receiving(event_type))
        out.append(
            f"| [`{event_type}`](#{event_type.replace('.', '')}) "
            f"| {note.producer} | {_cell(note.when)} | {note.subject} | {model.DATAVERSION} "
            f"| {consumers} |"
        )
    for event_type, model in CATALOGUE.items():
        note = note_for(event_type)
        out += [
            "",
            f"### {event_type}",
            "",
            f"Producer: **{note.producer}** (`source` `/whistle/{note.producer}`). When: "
            f"{note.when}. Subject: {note.subject}. `dataversion`: {model.DATAVERSION}. "
            f"`data` schema: `{model.__name__}`.",
            "",
            *_fields_table(schemas[model.__name__]),
        ]
    nested = sorted(name for name in schemas if name != "CloudEvent" and name not in _model_names())
    out += ["", "## Types used in event data"]
    for name in nested:
        out += ["", f"### {name}", "", *_fields_table(schemas[name])]
    out += ["", *_topology_section(), *_PRIVACY_AND_WEBHOOKS, *_endpoints_section(openapi)]
    return "\n".join(out).rstrip() + "\n"


def _model_names() -> set[str]:
    return {model.__name__ for model in CATALOGUE.values()}


def _topology_section() -> list[str]:
    lines = [
        "## Broker topology",
        "",
        f"- `{EVENTS_EXCHANGE.name}`: durable topic exchange; routing key = event type. "
        "Publishing is mandatory: an unroutable event is an error, not silence.",
        f"- `{PRIVATE_EXCHANGE.name}`: durable topic exchange for the events that carry "
        "personal details (`demand.details`, `unit.details`, `volunteer.details`), published "
        "through the same outbox with confirms. Audit has no queue on it: what passes there "
        "never enters the permanent log, so it can be corrected and erased. The audited events "
        "carry ids and `details_digest`, an HMAC-SHA256 of the private fields keyed with a "
        "per-record salt kept only by the owning service (deleted on erasure).",
        f"- `{DEAD_LETTER_EXCHANGE.name}`: durable direct exchange for dead letters; each "
        "consumer queue dead-letters with its own name as routing key to its `.dlq`.",
        "- Every service declares every queue below at start, so no event is unroutable because "
        "its consumer has not started yet.",
        "",
        "| queue | type | exchange | bound with | receives | attempts | delivery limit "
        "| dead-letter queue |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for spec in ALL_CONSUMER_QUEUES:
        keys = ", ".join(f"`{key}`" for key in spec.routing_keys)
        wildcards = any(word in ("*", "#") for key in spec.routing_keys for word in key.split("."))
        received = (
            ", ".join(f"`{t}`" for t in CATALOGUE if receives(spec, t)) if wildcards else "as bound"
        )
        lines.append(
            f"| `{spec.name}` | durable quorum | `{spec.exchange_name}` | {keys} | {received} "
            f"| {spec.max_attempts} | {spec.delivery_limit} | `{spec.dead_letter_name}` |"
        )
    lines += [
        "",
        "A consumer acks after its effect (and the events it emits) are committed, and records "
        "the event id with the effect, so a redelivery changes nothing twice. A message that "
        "cannot be parsed is rejected straight to the dead-letter queue; one whose handler "
        "fails is published again to its own queue after a backoff, with the attempt count in "
        "the `x-whistle-attempt` header, and the original acked; after the queue's attempts it "
        "is rejected to the dead-letter queue. Whistle counts, not RabbitMQ: RabbitMQ 4.3 no "
        "longer counts a requeueing nack toward `x-delivery-limit`, which stays as the bound "
        "on redeliveries after a consumer died mid-message.",
        "",
    ]
    return lines


_PRIVACY_AND_WEBHOOKS = [
    "## Personal data and erasure",
    "",
    "No event on `whistle.events` (the permanent, hash-chained log audit keeps) carries a "
    "phone, email, webhook URL or secret, a person's name, a building or flat, unit members' "
    "names, or a demand's address or description. Those travel on `whistle.private` "
    "(`volunteer.details`, `unit.details`, `demand.details`) to the services that need them; "
    "the audited event carries `details_digest` (claims: `members_named`, `members_digest`), "
    "`hmac-sha256:<hex>` of the canonical JSON (sorted keys, no spaces, UTF-8) of the private "
    "fields, keyed with a random per-record salt that only the owning service keeps.",
    "",
    "- `PATCH /v1/volunteers/{id}` (admin, or the volunteer's secretary) and "
    "`PATCH /v1/units/{id}` (admin) correct a record: `volunteer.updated` / `unit.updated` "
    "(ids, skills, digest, `version`) plus the private details.",
    "- `DELETE /v1/volunteers/{id}` (admin, or the volunteer's secretary) answers 204 (again "
    "on a repeat): the volunteer's name, building, contact, webhook secret and salt leave "
    "units (record, outbox, remembered idempotent answers) and notify (directory, contact, "
    "inbox, deliveries and dead letters); places still held on open demands are withdrawn "
    "(`claim.withdrawn`, the waitlist moves up); `volunteer.erased` records it with ids only. "
    "`GET /v1/volunteers/{id}` then answers 410 `volunteer-erased`. Reports and the history "
    "show the volunteer by id; `/v1/verify` stays ok.",
    "- Data written before this scheme must be reset (see the README): audit's log of it holds "
    "personal data that cannot be erased without breaking the chain.",
    "",
    "## Webhook deliveries",
    "",
    "Each receiver (a unit or volunteer with `contact.webhook_url`) has its own secret, made "
    "at registration and shown once as `webhook_secret` in the 201 (or in the `PATCH` that "
    "first sets a webhook URL); `POST /v1/units/{id}/webhook-secret` (admin or the unit) and "
    "`POST /v1/volunteers/{id}/webhook-secret` (admin, the secretary or the volunteer) make a "
    "new one, answered once, which signs every delivery from then on (409 `no-webhook` without "
    "a webhook URL). Each delivery is a POST of the notification JSON with:",
    "",
    '- `X-Whistle-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, '
    "keyed with the secret's UTF-8 bytes;",
    "- `X-Whistle-Delivery: <id>`, the same on every retry of the delivery; also "
    "`X-Whistle-Notification` and `X-Whistle-Kind`.",
    "",
    "A receiver refuses signatures more than 5 minutes old and delivery ids it has taken "
    "(the README has one). Whistle reads at most 64 KiB of the answer; a non-2xx, a timeout "
    "or a connection error is retried with backoff, then reported as `notification.failed`.",
    "",
]


def _endpoints_section(openapi: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## HTTP endpoints", ""]
    for name, document in openapi.items():
        port = SERVICES[name].default_port
        lines += [
            f"### {name} (port {port})",
            "",
            "| method | path | name | what |",
            "| --- | --- | --- | --- |",
        ]
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                # The first paragraph of the handler's docstring, where there is one.
                description = operation.get("description", "").strip().split("\n\n")[0]
                lines.append(
                    f"| {method.upper()} | `{path}` | {_cell(operation.get('summary', ''))} "
                    f"| {_cell(' '.join(description.split()))} |"
                )
        lines.append("")
    return lines


# --- writing and checking ------------------------------------------------------------------


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_all() -> tuple[dict[str, str], dict[str, str]]:
    """Relative path -> content of every generated file, and the services skipped (-> why)."""
    openapi = openapi_documents()
    files = {f"openapi/{name}.json": _json(doc) for name, doc in openapi.documents.items()}
    files["asyncapi.json"] = _json(asyncapi_document())
    files["README.md"] = render_index(openapi.documents)
    return files, openapi.skipped


def write(files: dict[str, str], out: Path) -> None:
    for relative, content in files.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def stale(files: dict[str, str], out: Path) -> list[str]:
    """What differs between the generated files and those in `out`, as readable lines."""
    problems = []
    committed = {str(p.relative_to(out)) for p in (out / "openapi").glob("*.json")}
    for extra in sorted(committed - set(files)):
        problems.append(f"{extra}: not generated any more (remove it)")
    for relative, content in files.items():
        target = out / relative
        if not target.exists():
            problems.append(f"{relative}: missing")
            continue
        current = target.read_text(encoding="utf-8")
        if current != content:
            diff = difflib.unified_diff(
                current.splitlines(),
                content.splitlines(),
                "committed",
                "generated",
                lineterm="",
                n=1,
            )
            problems.append(f"{relative}: differs\n" + "\n".join(list(diff)[:40]))
    return problems


cli = typer.Typer(help="Generate Whistle's reference documents.", no_args_is_help=True)


def _report_skipped(skipped: dict[str, str]) -> None:
    for name, why in skipped.items():
        print(f"skipped {name}: {why}; its OpenAPI is not generated", file=sys.stderr)


@cli.command()
def docs(
    out: Annotated[Path, typer.Option(help="where to write")] = DEFAULT_OUT,
) -> None:
    """Write docs/openapi/<service>.json, docs/asyncapi.json and docs/README.md."""
    files, skipped = render_all()
    _report_skipped(skipped)
    write(files, out)
    for relative in files:
        print(f"wrote {out / relative}")


@cli.command()
def check(
    out: Annotated[Path, typer.Option(help="the committed documents")] = DEFAULT_OUT,
) -> None:
    """Exit 1 when the documents in OUT are not what `docs` would write now."""
    files, skipped = render_all()
    _report_skipped(skipped)
    problems = stale(files, out)
    if problems:
        print("stale documents (run `make docs`):\n" + "\n".join(problems), file=sys.stderr)
        raise typer.Exit(1)
    print(f"{len(files)} documents up to date")


if __name__ == "__main__":
    # The documents are rendered from apps that never serve: development settings suffice
    # (production, the default, would ask for secrets only a deployment has).
    os.environ.setdefault("WHISTLE_ENV", "development")
    cli()
