"""The foundation's flow: a secretary posts a demand, audit has `demand.published`."""

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

STARTS = "2030-05-01T08:00:00+08:00"
ENDS = "2030-05-01T20:00:00+08:00"


def demand_body(community_id: str = "c-north", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "community_id": community_id,
        "kind": "staffing",
        "title": "North gate checkpoint",
        "location": {"grid": "G4", "address": "North gate"},
        "skills": ["Checkpoint"],
        "slots": 8,
        "starts_at": STARTS,
        "ends_at": ENDS,
        "priority": "urgent",
    }
    return body | overrides


def wait_for_events(
    audit: ServiceProcess, auth: str, subject: str, count: int = 1, timeout: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{audit.url}/v1/events", params={"subject": subject}, headers=bearer(auth)
        )
        items = response.json()["items"]
        if len(items) >= count:
            return items
        time.sleep(0.05)
    return items


def test_a_posted_demand_reaches_audit_as_its_cloudevent(
    start_service: Callable[..., ServiceProcess], token: Callable[..., str]
) -> None:
    dispatch = start_service("dispatch")
    audit = start_service("audit")
    admin = token("admin")
    created = httpx.post(
        f"{dispatch.url}/v1/communities",
        headers=bearer(admin),
        json={"id": "c-north", "name": "North", "street": "s-1", "district": "d-1"},
    )
    assert created.status_code == 201, created.text
    response = httpx.post(
        f"{dispatch.url}/v1/demands",
        json=demand_body(),
        headers=bearer(token("secretary", community="c-north")),
    )
    assert response.status_code == 201, response.text
    demand = response.json()
    assert response.headers["location"] == f"/v1/demands/{demand['id']}"
    items = wait_for_events(audit, token("auditor"), demand["id"])
    assert [item["event"]["type"] for item in items] == ["demand.published"]
    event = items[0]["event"]
    assert event["specversion"] == "1.0"
    assert event["correlationid"] == demand["id"]
    assert event["source"] == "/whistle/dispatch"
    assert event["dataversion"] == 2  # v2: no description or exact place (issue 10)
    # How fast is make bench's figure (whistle -> stored in audit, p50/p99), not a timeout here.


def test_bad_or_unauthorised_demands_are_refused_and_store_nothing(
    start_service: Callable[..., ServiceProcess], token: Callable[..., str]
) -> None:
    dispatch = start_service("dispatch")
    audit = start_service("audit")
    created = httpx.post(
        f"{dispatch.url}/v1/communities",
        headers=bearer(token("admin")),
        json={"id": "c-north", "name": "North", "street": "s-1", "district": "d-1"},
    )
    assert created.status_code == 201, created.text
    secretary = bearer(token("secretary", community="c-north"))
    json_headers = secretary | {"content-type": "application/json"}
    refused = [
        (
            400,
            "malformed-json",
            {"content": b'{"community_id": "c-north",', "headers": json_headers},
        ),
        (422, "validation-error", {"json": demand_body(slots=0), "headers": secretary}),
        (422, "validation-error", {"json": demand_body(ends_at=STARTS), "headers": secretary}),
        (401, "unauthorized", {"json": demand_body()}),
        (
            403,
            "forbidden",
            {"json": demand_body(), "headers": bearer(token("secretary", community="c-south"))},
        ),
        (403, "forbidden", {"json": demand_body(), "headers": bearer(token("auditor"))}),
    ]
    for status, slug, request in refused:
        response = httpx.post(f"{dispatch.url}/v1/demands", **request)  # type: ignore[arg-type]
        assert response.status_code == status, (slug, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == f"https://whistle.dev/problems/{slug}"
    listed = httpx.get(
        f"{dispatch.url}/v1/demands", params={"community_id": "c-north"}, headers=secretary
    )
    assert listed.json()["items"] == []
    # Only the community's registration reached audit: no demand event from a refusal.
    assert wait_for_events(audit, token("auditor"), "c-north")  # audit is caught up to here
    time.sleep(0.3)  # room for a stray demand event to show up
    events = httpx.get(f"{audit.url}/v1/events", headers=bearer(token("auditor"))).json()["items"]
    assert [item["event"]["type"] for item in events] == ["community.registered"]
