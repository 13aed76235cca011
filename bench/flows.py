"""Full flows through the running stack, and what each costs in MongoDB commands.

- whistle -> audit and -> inbox: a secretary posts a demand; timed from the POST until audit
  serves its `demand.published` and until the volunteer it concerns finds it in their inbox
  (polled every 10 ms, so a figure includes up to one poll interval).
- claims decided per second over HTTP with two units processes on units' store: many
  volunteers race for few slots; every claim is decided (201 or 409 demand-full), none
  overbooks.
- MongoDB commands per request and per consumed event, per service, from each service's
  `whistle_mongo_commands_total` (PyMongo command monitoring) before and after the flow.
"""

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from bench.load import token
from bench.report import percentile
from shared.auth import Role

METRIC = re.compile(r"^(whistle_\w+?)(?:_total)?\{([^}]*)\} ([0-9.e+-]+)$")


async def counters(client: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per service: MongoDB commands sent, events consumed, HTTP requests answered."""
    result = {}
    for name, url in urls.items():
        text = (await client.get(f"{url}/metrics")).text
        commands = consumed = requests = 0.0
        for line in text.splitlines():
            if line.startswith("whistle_mongo_commands_total{"):
                commands += float(line.rsplit(" ", 1)[1])
            elif line.startswith("whistle_messages_consumed_total{") and 'outcome="ok"' in line:
                consumed += float(line.rsplit(" ", 1)[1])
            elif line.startswith("whistle_http_requests_total{") and 'route="/v1/' in line:
                requests += float(line.rsplit(" ", 1)[1])
        result[name] = {"commands": commands, "consumed": consumed, "requests": requests}
    return result


async def command_costs(
    client: httpx.AsyncClient,
    urls: dict[str, str],
    flow: Callable[[], Awaitable[Any]],
    *,
    settle_s: float = 3.0,
    idle_s: float = 3.0,
) -> tuple[Any, dict[str, dict[str, float | None]]]:
    """Run `flow`, let the consumers settle, and divide each service's commands by its work.

    The outbox relay, the timer wheel and their leases poll the store all the time; their
    rate is measured first, while nothing happens, and taken off the flow's count."""
    idle_from = await counters(client, urls)
    await asyncio.sleep(idle_s)
    before = await counters(client, urls)
    started = time.perf_counter()
    outcome = await flow()
    await asyncio.sleep(settle_s)  # events still flowing to the consumers belong to the flow
    after = await counters(client, urls)
    duration = time.perf_counter() - started
    costs: dict[str, dict[str, float | None]] = {}
    for name in urls:
        idle_rate = (before[name]["commands"] - idle_from[name]["commands"]) / idle_s
        delta = {key: after[name][key] - before[name][key] for key in after[name]}
        commands = max(0.0, delta["commands"] - idle_rate * duration)
        work = delta["requests"] + delta["consumed"]
        costs[name] = {
            "commands": round(commands),
            "background_commands_per_s": round(idle_rate, 1),
            "requests": delta["requests"],
            "consumed_events": delta["consumed"],
            "per_request": round(commands / delta["requests"], 2)
            if delta["requests"] and not delta["consumed"]
            else None,
            "per_consumed_event": round(commands / delta["consumed"], 2)
            if delta["consumed"] and not delta["requests"]
            else None,
            "per_unit_of_work": round(commands / work, 2) if work else None,
        }
    return outcome, costs


async def _register_community(
    client: httpx.AsyncClient, urls: dict[str, str], volunteers: int
) -> tuple[str, dict[str, str], list[tuple[str, dict[str, str]]]]:
    community = f"c-flow-{uuid.uuid4().hex[:8]}"
    created = await client.post(
        f"{urls['dispatch']}/v1/communities",
        headers=token(Role.ADMIN, "bench-admin"),
        json={"id": community, "name": "Flow", "street": "s-flow", "district": "d-flow"},
    )
    created.raise_for_status()
    secretary = token(Role.SECRETARY, "sec-flow", community=community)

    async def register(i: int) -> tuple[str, dict[str, str]]:
        response = await client.post(
            f"{urls['units']}/v1/volunteers",
            headers=secretary,
            json={
                "name": f"Flow volunteer {i}",
                "community_id": community,
                "skills": ["checkpoint"],
                "max_hours_per_week": 168,
                "contact": {},
            },
        )
        response.raise_for_status()
        volunteer_id = response.json()["id"]
        return volunteer_id, token(Role.VOLUNTEER, f"vol-flow-{i}", volunteer=volunteer_id)

    registered = []
    for start in range(0, volunteers, 10):
        registered += await asyncio.gather(
            *(register(i) for i in range(start, min(volunteers, start + 10)))
        )
    return community, secretary, registered


def _demand(community: str, starts: datetime, slots: int) -> dict[str, Any]:
    return {
        "community_id": community,
        "kind": "staffing",
        "title": "Flow checkpoint",
        "skills": ["checkpoint"],
        "slots": slots,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(minutes=1)).isoformat(),
        "priority": "urgent",
    }


async def _until(probe: Callable[[], Awaitable[bool]], within_s: float = 30.0) -> float | None:
    started = time.perf_counter()
    while time.perf_counter() - started < within_s:
        if await probe():
            return time.perf_counter()
        await asyncio.sleep(0.01)
    return None


async def whistle_latency(
    client: httpx.AsyncClient, urls: dict[str, str], demands: int
) -> dict[str, Any]:
    """POST a demand, then time its arrival in audit and in the volunteer's inbox."""
    community, secretary, [(volunteer_id, volunteer)] = await _register_community(client, urls, 1)
    auditor = token(Role.AUDITOR, "bench-auditor")
    to_audit: list[float] = []
    to_inbox: list[float] = []
    missed = 0
    first = datetime.fromisoformat("2031-06-02T00:00:00+00:00")
    for k in range(demands):
        started = time.perf_counter()
        posted = await client.post(
            f"{urls['dispatch']}/v1/demands",
            headers=secretary,
            json=_demand(community, first + timedelta(minutes=k), 1),
        )
        if posted.status_code != 201:
            raise SystemExit(f"posting a demand: {posted.status_code} {posted.text}")
        demand_id = posted.json()["id"]

        async def in_audit(demand_id: str = demand_id) -> bool:
            response = await client.get(
                f"{urls['audit']}/v1/events",
                headers=auditor,
                params={"subject": demand_id, "type": "demand.published"},
            )
            return response.status_code == 200 and bool(response.json()["items"])

        async def in_inbox(demand_id: str = demand_id) -> bool:
            response = await client.get(
                f"{urls['notify']}/v1/inbox", headers=volunteer, params={"limit": 5}
            )
            return response.status_code == 200 and any(
                item.get("demand_id") == demand_id for item in response.json()["items"]
            )

        audit_at, inbox_at = await asyncio.gather(_until(in_audit), _until(in_inbox))
        if audit_at is None or inbox_at is None:
            missed += 1
            continue
        to_audit.append((audit_at - started) * 1000)
        to_inbox.append((inbox_at - started) * 1000)
    to_audit.sort()
    to_inbox.sort()
    return {
        "demands": demands,
        "missed": missed,
        "to_audit_p50_ms": percentile(to_audit, 50),
        "to_audit_p99_ms": percentile(to_audit, 99),
        "to_inbox_p50_ms": percentile(to_inbox, 50),
        "to_inbox_p99_ms": percentile(to_inbox, 99),
        "volunteer": volunteer_id,
    }


async def claims_race(
    client: httpx.AsyncClient,
    urls: dict[str, str],
    second_units: str,
    *,
    volunteers: int,
    demands: int,
    slots: int,
) -> dict[str, Any]:
    """`volunteers` claimants race for `slots` on each demand, spread over two units."""
    community, secretary, claimants = await _register_community(client, urls, volunteers)
    first = datetime.fromisoformat("2031-09-01T00:00:00+00:00")
    units_urls = [urls["units"], second_units]
    statuses: dict[str, int] = {}
    decided = 0
    overbooked = 0
    elapsed = 0.0
    admin = token(Role.ADMIN, "bench-admin")
    for k in range(demands):
        posted = await client.post(
            f"{urls['dispatch']}/v1/demands",
            headers=secretary,
            json=_demand(community, first + timedelta(minutes=k), slots),
        )
        if posted.status_code != 201:
            raise SystemExit(f"posting a demand: {posted.status_code} {posted.text}")
        demand_id = posted.json()["id"]

        async def known(demand_id: str = demand_id) -> bool:
            response = await client.get(
                f"{urls['units']}/v1/open-demands",
                headers=claimants[0][1],
                params={"community_id": community},
            )
            return any(item["id"] == demand_id for item in response.json()["items"])

        await _until(known)

        async def claim(i: int, volunteer: dict[str, str], demand_id: str = demand_id) -> int:
            try:
                response = await client.post(
                    f"{units_urls[i % 2]}/v1/demands/{demand_id}/claims",
                    headers=volunteer,
                    json={"headcount": 1},
                )
            except httpx.HTTPError:
                return 0  # no answer (the connection dropped): counted, as the load run does
            return response.status_code

        started = time.perf_counter()
        codes = await asyncio.gather(*(claim(i, v) for i, (_, v) in enumerate(claimants)))
        elapsed += time.perf_counter() - started
        for code in codes:
            statuses[str(code)] = statuses.get(str(code), 0) + 1
        decided += sum(code in (201, 409) for code in codes)
        listed = await client.get(
            f"{urls['units']}/v1/claims", headers=admin, params={"demand_id": demand_id}
        )
        accepted = sum(
            item["headcount"] for item in listed.json()["items"] if item["status"] == "accepted"
        )
        overbooked += accepted > slots
    return {
        "units_processes": 2,
        "claims": volunteers * demands,
        "decided": decided,
        "decided_per_s": round(decided / elapsed, 1) if elapsed else None,
        "by_status": statuses,
        "demands_overbooked": overbooked,
        "slots_per_demand": slots,
    }
