"""`docs/README.md`: the index a person reads: the envelope, every event, the topology, the
HTTP endpoints. Rendered from the catalogue, the topology and the apps' OpenAPI."""

import json
from pathlib import Path
from typing import Any

from services.cli.docs.routing import queues_receiving, receives
from services.cli.docs.schemas import event_schemas, model_names
from services.cli.registry import SERVICES
from services.topology import ALL_CONSUMER_QUEUES
from shared.broker.topology import (
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


# Hand-written paragraphs (what no declaration says: the envelope's meaning, personal data and
# erasure, webhook signing), kept as Markdown beside the code that includes them.
PROSE = Path(__file__).parent / "prose"


def _prose(name: str) -> str:
    return (PROSE / name).read_text(encoding="utf-8")


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
        _prose("envelope.md").format(exchange=EVENTS_EXCHANGE.name),
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
    out += [
        "",
        *_topology_section(),
        *_prose("privacy_and_webhooks.md").split("\n"),
        *_endpoints_section(openapi),
    ]
    return "\n".join(out).rstrip() + "\n"


def _private_types() -> str:
    return ", ".join(f"`{model.TYPE}`" for model in CATALOGUE.values() if model.PRIVATE)


def _topology_section() -> list[str]:
    lines = [
        "## Broker topology",
        "",
        f"- `{EVENTS_EXCHANGE.name}`: durable topic exchange; routing key = event type. "
        "Publishing is mandatory: an unroutable event is an error, not silence.",
        f"- `{PRIVATE_EXCHANGE.name}`: durable topic exchange for the events that carry "
        f"personal details ({_private_types()}), published "
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
