"""The whole flow through real dispatch, units, notify and audit processes, read back by audit.

A secretary blows the whistle, a unit reports for it, checks in on site and completes; audit
shows it all on the demand's timeline (notifications included), rebuilds the demand before
and after the claim, and scores the unit.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.clock import utcnow
from tests.audit.test_log_e2e import QUIET_RELAY
from tests.conftest import bearer
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e


async def until[T](
    probe: Callable[[], Awaitable[T]], ready: Callable[[T], bool], timeout: float = 20.0
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if ready(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_audit_tells_the_story_of_a_whistle(
    start_service: Callable[..., ServiceProcess], token: Callable[..., str]
) -> None:
    dispatch = start_service("dispatch")
    units = start_service("units")
    notify = start_service("notify")
    audit = start_service("audit", **QUIET_RELAY)
    admin, auditor = token("admin"), token("auditor")
    secretary = token("secretary", community="c-flow")
    async with httpx.AsyncClient(timeout=30) as http:
        created = await http.post(
            f"{dispatch.url}/v1/communities",
            json={"id": "c-flow", "name": "Flow", "street": "s-flow", "district": "d-flow"},
            headers=bearer(admin),
        )
        assert created.status_code == 201, created.text
        unit = await until(
            lambda: http.post(
                f"{units.url}/v1/units",
                json={
                    "name": "Street clinic",
                    "kind": "department",
                    "communities": ["c-flow"],
                    "skills": ["first aid"],
                },
                headers=bearer(admin),
            ),
            lambda r: r.status_code == 201,
        )
        assert unit.status_code == 201, unit.text
        unit_id = unit.json()["id"]
        member = token("unit", unit=unit_id)
        starts = utcnow() + timedelta(minutes=30)
        demand = await http.post(
            f"{dispatch.url}/v1/demands",
            json={
                "community_id": "c-flow",
                "kind": "staffing",
                "title": "North gate",
                "location": {"grid": "G4"},
                "skills": ["first aid"],
                "slots": 2,
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=4)).isoformat(),
                "priority": "urgent",
            },
            headers=bearer(secretary),
        )
        assert demand.status_code == 201, demand.text
        demand_id = demand.json()["id"]
        claim = await until(
            lambda: http.post(
                f"{units.url}/v1/demands/{demand_id}/claims",
                json={"headcount": 2},
                headers=bearer(member),
            ),
            lambda r: r.status_code != 404,
        )
        assert claim.status_code == 201, claim.text
        claim_id = claim.json()["id"]
        code = await http.get(
            f"{units.url}/v1/demands/{demand_id}/check-in-code", headers=bearer(secretary)
        )
        checked_in = await http.post(
            f"{units.url}/v1/claims/{claim_id}/check-in",
            json={"code": code.json()["code"]},
            headers=bearer(member),
        )
        assert checked_in.status_code == 200, checked_in.text
        done = await http.post(
            f"{units.url}/v1/claims/{claim_id}/complete",
            json={"report": "Gate held"},
            headers=bearer(member),
        )
        assert done.status_code == 200, done.text

        story = ["demand.published", "claim.accepted", "claim.checked_in", "claim.completed"]

        async def timeline() -> list[dict[str, Any]]:
            response = await http.get(
                f"{audit.url}/v1/timeline/{demand_id}", headers=bearer(auditor)
            )
            items: list[dict[str, Any]] = response.json().get("items", [])
            return items

        def told(items: list[dict[str, Any]]) -> bool:
            types = [item["event"]["type"] for item in items]
            return all(t in types for t in [*story, "demand.filled", "notification.sent"])

        items = await until(timeline, told)
        types = [item["event"]["type"] for item in items]
        assert told(items), types
        assert [t for t in types if t in story] == story
        assert all(item["event"]["correlationid"] == demand_id for item in items)
        assert items[0]["since_whistle_s"] == 0
        assert all(item["since_whistle_s"] >= 0 for item in items)

        accepted = next(i["event"] for i in items if i["event"]["type"] == "claim.accepted")
        accepted_at = datetime.fromisoformat(accepted["time"])

        async def state(at: datetime) -> dict[str, Any]:
            response = await http.get(
                f"{audit.url}/v1/demands/{demand_id}/state",
                params={"as_of": at.isoformat()},
                headers=bearer(auditor),
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        before = await state(accepted_at - timedelta(milliseconds=1))
        assert (before["status"], before["filled"], before["claimants"]) == ("open", 0, [])
        after = await state(accepted_at)
        assert (after["filled"], after["slots"]) == (2, 2)
        assert [k["claimant"]["id"] for k in after["claimants"]] == [unit_id]

        whistle = datetime.fromisoformat(items[0]["event"]["time"])
        report = await http.get(
            f"{audit.url}/v1/reports/responsiveness",
            params={
                "from": (whistle - timedelta(minutes=1)).isoformat(),
                "to": (whistle + timedelta(minutes=1)).isoformat(),
                "by": "unit",
            },
            headers=bearer(secretary),
        )
        assert report.status_code == 200, report.text
        [row] = report.json()["rows"]
        assert (row["key"], row["rank"], row["demands"], row["claims"]) == (unit_id, 1, 1, 1)
        assert (row["fill_rate"], row["attendance_rate"], row["completion_rate"]) == (1, 1, 1)
        assert row["person_times"] == 2  # two people came, once each
        assert row["score"] == 100.0  # claimed within seconds: full marks for speed too
        verdict = await http.get(f"{audit.url}/v1/verify", headers=bearer(auditor))
        assert verdict.json()["ok"] is True
    assert notify.url
