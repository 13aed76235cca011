"""`docs/README.md`: the index a person reads: the envelope, every event, the topology, the
HTTP endpoints. Rendered from the catalogue, the topology and the apps' OpenAPI."""

import json
from typing import Any

from services.cli.docs.routing import queues_receiving, receives
from services.cli.docs.schemas import event_schemas, model_names
from services.cli.registry import SERVICES
from shared.broker.topology import (
    ALL_CONSUMER_QUEUES,
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    PRIVATE_EXCHANGE,
)
from shared.events.catalogue import CATALOGUE


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
    schemas = event_schemas()
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
        consumers = ", ".join(f"`{spec.name}`" for spec in queues_receiving(event_type))
        out.append(
            f"| [`{event_type}`](#{event_type.replace('.', '')}) "
            f"| {model.PRODUCER} | {_cell(model.WHEN)} | {model.SUBJECT} | {model.DATAVERSION} "
            f"| {consumers} |"
        )
    for event_type, model in CATALOGUE.items():
        out += [
            "",
            f"### {event_type}",
            "",
            f"Producer: **{model.PRODUCER}** (`source` `/whistle/{model.PRODUCER}`). When: "
            f"{model.WHEN}. Subject: {model.SUBJECT}. `dataversion`: {model.DATAVERSION}. "
            f"`data` schema: `{model.__name__}`.",
            "",
            *_fields_table(schemas[model.__name__]),
        ]
    nested = sorted(name for name in schemas if name != "CloudEvent" and name not in model_names())
    out += ["", "## Types used in event data"]
    for name in nested:
        out += ["", f"### {name}", "", *_fields_table(schemas[name])]
    out += ["", *_topology_section(), *_PRIVACY_AND_WEBHOOKS, *_endpoints_section(openapi)]
    return "\n".join(out).rstrip() + "\n"


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
