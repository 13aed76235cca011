"""The generated reference documents: up to date in docs/, and saying what the code does."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.cli import docs
from services.cli.registry import APIS, SERVICES
from services.topology import ALL_CONSUMER_QUEUES
from shared.events.catalogue import CATALOGUE, PRIVATE_TYPES, is_private

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs"


def tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_committed_docs_are_what_make_docs_writes(tmp_path: Path) -> None:
    # The very command `make docs` runs, into a temporary directory.
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.docs", "docs", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    generated = tree(tmp_path)
    committed = {
        relative: text
        for relative, text in tree(COMMITTED).items()
        if relative in generated or relative.startswith("openapi/")
    }
    assert sorted(committed) == sorted(generated), "run `make docs` and commit docs/"
    stale = [relative for relative in generated if committed[relative] != generated[relative]]
    assert not stale, f"stale: {stale}; run `make docs` and commit docs/"


def test_every_api_has_its_openapi() -> None:
    found = docs.openapi_documents()
    assert found.skipped == {}
    assert set(found.documents) == set(APIS)  # the console serves pages, not an API
    for name, document in found.documents.items():
        assert document["info"]["title"] == f"Whistle {name}"
        assert "/readyz" in document["paths"]


def test_check_reports_an_edited_a_missing_and_a_leftover_document(tmp_path: Path) -> None:
    files = {"asyncapi.json": "{}\n", "README.md": "# index\n", "openapi/dispatch.json": "{}\n"}
    docs.write(files, tmp_path)
    assert docs.stale(files, tmp_path) == []
    (tmp_path / "README.md").write_text("# edited by hand\n")
    (tmp_path / "asyncapi.json").unlink()
    (tmp_path / "openapi" / "gone.json").write_text("{}\n")
    problems = docs.stale(files, tmp_path)
    assert any(problem.startswith("README.md: differs") for problem in problems)
    assert "asyncapi.json: missing" in problems
    assert any(problem.startswith("openapi/gone.json: not generated") for problem in problems)


def test_every_event_type_is_documented() -> None:
    # What the docs say of an event is what its catalogue model declares.
    for event_type, model in CATALOGUE.items():
        assert model.PRODUCER in SERVICES, event_type
        assert model.WHEN.strip(), event_type
        assert model.SUBJECT.strip(), event_type


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("#", "demand.published", True),
        ("demand.*", "demand.published", True),
        ("demand.*", "claim.accepted", False),
        ("demand.*", "demand", False),
        ("*.registered", "unit.registered", True),
        ("demand.#", "demand", True),
        ("demand.#", "demand.a.b", True),
        ("claim.checked_in", "claim.checked_in", True),
        ("claim.checked_in", "claim.completed", False),
    ],
)
def test_topic_matching_follows_amqp(pattern: str, key: str, matches: bool) -> None:
    assert docs.topic_matches(pattern, key) is matches


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return docs.asyncapi_document()


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def test_asyncapi_references_all_resolve(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    refs = references(asyncapi)
    assert refs
    for ref in refs:
        resolve(asyncapi, ref)


def test_asyncapi_has_a_channel_and_a_send_operation_per_event_type(
    asyncapi: dict[str, Any],
) -> None:
    for event_type, model in CATALOGUE.items():
        channel = asyncapi["channels"][event_type]
        assert channel["address"] == event_type
        exchange = "whistle.private" if is_private(event_type) else "whistle.events"
        assert channel["bindings"]["amqp"]["exchange"]["name"] == exchange
        producer = model.PRODUCER
        operation = asyncapi["operations"][f"{producer}.sends.{event_type}"]
        assert operation["action"] == "send"
        assert operation["bindings"]["amqp"]["deliveryMode"] == 2  # persistent
        message = resolve(asyncapi, operation["messages"][0]["$ref"])
        payload = resolve(asyncapi, message["$ref"])["payload"]["allOf"][1]["properties"]
        assert payload["type"] == {"const": event_type}
        assert payload["dataversion"] == {"const": model.DATAVERSION}
        data = resolve(asyncapi, payload["data"]["$ref"])
        assert set(data["properties"]) == set(model.model_fields)


def test_asyncapi_receive_operations_follow_the_queue_bindings(asyncapi: dict[str, Any]) -> None:
    for spec in ALL_CONSUMER_QUEUES:
        operation = asyncapi["operations"][f"{spec.service}.receives.{spec.name}"]
        channel = resolve(asyncapi, operation["channel"]["$ref"])
        assert channel["address"] == spec.name
        assert channel["bindings"]["amqp"]["queue"]["name"] == spec.name
        received = {resolve(asyncapi, ref["$ref"])["name"] for ref in channel["messages"].values()}
        assert received == {t for t in CATALOGUE if docs.receives(spec, t)}
        for ref in operation["messages"]:
            # An operation's messages must be messages of its own channel.
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
        dead_letters = asyncapi["channels"][f"queue.{spec.dead_letter_name}"]
        assert dead_letters["address"] == spec.dead_letter_name
    audit = asyncapi["channels"]["queue.audit.events"]
    # Bound with `#` to whistle.events: everything but the private details (issue 10).
    assert len(audit["messages"]) == len(CATALOGUE) - len(PRIVATE_TYPES)
    assert not any(name.endswith("Details") for name in audit["messages"])


def test_the_asyncapi_cloudevent_requires_specversion(asyncapi: dict[str, Any]) -> None:
    cloud_event = asyncapi["components"]["schemas"]["CloudEvent"]
    assert {"specversion", "id", "source", "type"} <= set(cloud_event["required"])


def test_openapi_says_bearer_auth_and_problem_bodies_on_every_v1_route() -> None:
    for name, document in docs.openapi_documents().documents.items():
        assert document["components"]["securitySchemes"]["bearer"] == {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }, name
        assert "HTTPValidationError" not in document["components"]["schemas"], name
        assert "Problem" in document["components"]["schemas"]
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                responses = operation["responses"]
                if path.startswith("/v1"):
                    assert operation["security"] == [{"bearer": []}], (name, path, method)
                    wanted = {"400", "401", "403", "404", "422", "429", "503"}
                    if method == "post":
                        wanted |= {"409", "412", "413", "415"}
                    assert wanted <= set(responses), (name, path, method)
                for status, response in responses.items():
                    if status.startswith(("4", "5")):
                        assert set(response["content"]) == {"application/problem+json"}, (
                            name,
                            path,
                            status,
                        )


def test_openapi_names_the_streaming_media_types() -> None:
    documents = docs.openapi_documents().documents
    stream = documents["notify"]["paths"]["/v1/inbox/stream"]["get"]["responses"]["200"]
    assert "text/event-stream" in stream["content"]
    log = documents["audit"]["paths"]["/v1/events"]["get"]["responses"]["200"]
    assert "application/x-ndjson" in log["content"]
