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


def test_demand_reaches_audit_within_a_second(
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
    posted_at = time.monotonic()
    response = httpx.post(
        f"{dispatch.url}/v1/demands",
        json=demand_body(),
        headers=bearer(token("secretary", community="c-north")),
    )
    assert response.status_code == 201, response.text
    demand = response.json()
    assert response.headers["location"] == f"/v1/demands/{demand['id']}"
    items = wait_for_events(audit, token("auditor"), demand["id"])
    elapsed = time.monotonic() - posted_at
    assert [item["event"]["type"] for item in items] == ["demand.published"]
    event = items[0]["event"]
    assert event["specversion"] == "1.0"
    assert event["correlationid"] == demand["id"]
    assert event["source"] == "/whistle/dispatch"
    assert event["dataversion"] == 1
    assert elapsed < 1.0, f"took {elapsed:.2f}s"
