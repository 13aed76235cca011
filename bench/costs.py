"""What each service costs per event: CPU milliseconds and MongoDB commands.

`python -m bench.costs [--flows N]` starts dispatch, units, notify and audit as `whistle serve`
processes on a vhost of their own, each with its own embedded MongoDB stand-in behind a proxy
that counts the commands the service sends (bench/wire_counter.py). It registers a community
and a unit, measures every process idle, then drives N flows, each the way a secretary and a
unit would: a demand is posted (dispatch), claimed (units: the one slot fills), and cancelled
(dispatch: the claim is released), in three phases, each drained before the next. Each
process's CPU time comes from the operating system (psutil). Idle work (pollers, lease
renewals, driver heartbeats) is measured for as long as the drive lasted and subtracted, so
what is left is the cost of the events. "Per event" is per
event in audit's log (every event on the exchange, once).

The stand-in is not MongoDB: its own CPU is printed but says nothing about production; the
command counts are what the services send and hold for a real replica set too.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import httpx
import psutil

from bench.infra import ROOT, bench_vhost, embedded_mongo, stop
from bench.wire_counter import MONITORING, CommandCounter
from services.topology import ALL_CONSUMER_QUEUES
from shared.auth import Role, issue_token
from shared.settings import DEV_JWT_SECRET

T = TypeVar("T")

SERVICES = ("dispatch", "units", "notify", "audit")
# Ports for this benchmark's processes (the range the k8s helper was given: 18500-18599).
BASE_PORT = int(os.environ.get("BENCH_COSTS_BASE_PORT", "18500"))
IDLE_PROBE_S = 5.0


@dataclass
class Measured:
    name: str
    process: psutil.Process
    store: psutil.Process
    counter: CommandCounter
    url: str

    def cpu_s(self) -> float:
        return _cpu_s(self.process)

    def store_cpu_s(self) -> float:
        return _cpu_s(self.store)


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    total = times.user + times.system
    for child in process.children(recursive=True):
        child_times = child.cpu_times()
        total += child_times.user + child_times.system
    return total


@dataclass(frozen=True)
class Sample:
    cpu_s: dict[str, float]
    store_cpu_s: dict[str, float]
    commands: dict[str, Counter[str]]
    at: float


def sample(services: list[Measured]) -> Sample:
    return Sample(
        {s.name: s.cpu_s() for s in services},
        {s.name: s.store_cpu_s() for s in services},
        {s.name: s.counter.snapshot() for s in services},
        time.monotonic(),
    )


@contextmanager
def service(name: str, port: int, rabbitmq_url: str, mongodb_url: str) -> Iterator[str]:
    env = {
        **os.environ,
        "RABBITMQ_URL": rabbitmq_url,
        "MONGODB_URL": mongodb_url,
        "WHISTLE_DB_PREFIX": f"costs{uuid.uuid4().hex[:8]}_",
        f"WHISTLE_{name.upper()}_PORT": str(port),
        # The level the manifests run at: the log lines are part of the cost.
        "WHISTLE_LOG_LEVEL": "INFO",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", name],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield str(process.pid)
    finally:
        stop(process, 20)


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready in {timeout:.0f} s")


@contextmanager
def system(rabbitmq_url: str) -> Iterator[list[Measured]]:
    with ExitStack() as stack:
        measured: list[Measured] = []
        for index, name in enumerate(SERVICES):
            store_url, store = stack.enter_context(embedded_mongo())
            parts = urlsplit(store_url)
            assert parts.hostname is not None
            assert parts.port is not None
            counter = CommandCounter(parts.hostname, parts.port, BASE_PORT + 10 + index).start()
            stack.callback(counter.stop)
            proxied = urlunsplit(
                (parts.scheme, f"127.0.0.1:{counter.port}", parts.path, parts.query, "")
            )
            port = BASE_PORT + 1 + index
            pid = stack.enter_context(service(name, port, rabbitmq_url, proxied))
            measured.append(
                Measured(
                    name,
                    psutil.Process(int(pid)),
                    psutil.Process(store.pid),
                    counter,
                    f"http://127.0.0.1:{port}",
                )
            )
        for entry in measured:
            wait_ready(entry.url)
        yield measured


def _bearer(role: Role, unit: str | None = None) -> dict[str, str]:
    token = issue_token(DEV_JWT_SECRET, sub=f"bench-{role.value}", role=role, unit=unit)
    return {"Authorization": f"Bearer {token}"}


async def _retry_post(
    client: httpx.AsyncClient, url: str, body: dict[str, object], headers: dict[str, str]
) -> httpx.Response:
    """POST until the receiving service knows what the body refers to (it learns by event)."""
    for _ in range(500):
        response = await client.post(url, json=body, headers=headers)
        if response.status_code not in (404, 422):
            return response
        await asyncio.sleep(0.02)
    raise SystemExit(f"{url}: still {response.status_code} {response.text[:200]}")


async def _post_when_not_busy(
    client: httpx.AsyncClient, url: str, body: dict[str, object], headers: dict[str, str]
) -> httpx.Response:
    """POST again after a 503 `busy` (contention: nothing was changed), as the contract asks
    a client to, after its Retry-After; the retries' work is counted in the costs."""
    for _ in range(20):
        response = await client.post(url, json=body, headers=headers)
        if response.status_code != 503:
            return response
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    return response


async def setup(client: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, str]:
    admin = _bearer(Role.ADMIN)
    community = {"id": "c-bench", "name": "Bench", "street": "s-bench", "district": "d-bench"}
    response = await client.post(
        f"{urls['dispatch']}/v1/communities", json=community, headers=admin
    )
    assert response.status_code == 201, response.text
    unit = await _retry_post(
        client,
        f"{urls['units']}/v1/units",
        {
            "name": "Bench unit",
            "kind": "department",
            "communities": ["c-bench"],
            "skills": [],
            "contact": {},
        },
        admin,
    )
    assert unit.status_code == 201, unit.text
    return _bearer(Role.UNIT, unit=unit.json()["id"])


async def post_demand(client: httpx.AsyncClient, urls: dict[str, str], index: int) -> str:
    day = 1 + index % 27
    demand = {
        "community_id": "c-bench",
        "kind": "staffing",
        "title": f"Checkpoint {index}",
        "location": {"grid": "G1"},
        "skills": [],
        "slots": 1,
        "starts_at": f"2031-03-{day:02d}T08:00:00+08:00",
        "ends_at": f"2031-03-{day:02d}T20:00:00+08:00",
        "priority": "urgent",
    }
    created = await _post_when_not_busy(
        client, f"{urls['dispatch']}/v1/demands", demand, _bearer(Role.ADMIN)
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def claim(
    client: httpx.AsyncClient, urls: dict[str, str], unit: dict[str, str], demand_id: str
) -> None:
    claimed = await _post_when_not_busy(
        client, f"{urls['units']}/v1/demands/{demand_id}/claims", {"headcount": 1}, unit
    )
    assert claimed.status_code == 201, claimed.text


async def cancel(client: httpx.AsyncClient, urls: dict[str, str], demand_id: str) -> None:
    cancelled = await _post_when_not_busy(
        client,
        f"{urls['dispatch']}/v1/demands/{demand_id}/cancel",
        {"reason": "bench"},
        _bearer(Role.ADMIN),
    )
    assert cancelled.status_code == 200, cancelled.text


async def drained(rabbitmq_url: str, quiet_s: float = 2.0) -> None:
    """Every consumer queue empty and staying empty for quiet_s (outbox relays poll 0.25 s)."""
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            depths = [
                (await channel.declare_queue(q.name, passive=True)).declaration_result.message_count
                for q in ALL_CONSUMER_QUEUES
            ]
            if any(depths):
                quiet_since = time.monotonic()
            await asyncio.sleep(0.1)


async def partition_heads(client: httpx.AsyncClient, audit_url: str) -> dict[str, int]:
    """Each partition of audit's log and its head seq."""
    response = await client.get(f"{audit_url}/v1/partitions", headers=_bearer(Role.AUDITOR))
    assert response.status_code == 200, response.text
    return {item["partition"]: int(item["seq"]) for item in response.json()["items"]}


async def event_types(
    client: httpx.AsyncClient, audit_url: str, after: dict[str, int]
) -> Counter[str]:
    """The types of the events audit logged after each partition's head seq in `after`."""
    types: Counter[str] = Counter()
    headers = {**_bearer(Role.AUDITOR), "Accept": "application/x-ndjson"}
    async with client.stream("GET", f"{audit_url}/v1/events", headers=headers) as response:
        async for line in response.aiter_lines():
            if line:
                record = json.loads(line)
                if record["seq"] > after.get(record["partition"], 0):
                    types[record["event"]["type"]] += 1
    return types


async def log_length(client: httpx.AsyncClient, audit_url: str) -> int:
    response = await client.get(f"{audit_url}/v1/verify", headers=_bearer(Role.AUDITOR))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True, body
    return int(body["events"])


def _per_s(
    before: Sample, after: Sample
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    elapsed = after.at - before.at
    cpu = {n: (after.cpu_s[n] - before.cpu_s[n]) / elapsed for n in SERVICES}
    store = {n: (after.store_cpu_s[n] - before.store_cpu_s[n]) / elapsed for n in SERVICES}
    commands = {
        n: sum(
            count
            for name, count in (after.commands[n] - before.commands[n]).items()
            if name not in MONITORING
        )
        / elapsed
        for n in SERVICES
    }
    return cpu, store, commands


async def measure(
    services: list[Measured], rabbitmq_url: str, flows: int, concurrency: int
) -> None:
    urls = {s.name: s.url for s in services}
    async with httpx.AsyncClient(timeout=30) as client:
        unit = await setup(client, urls)
        await drained(rabbitmq_url)
        events_before = await log_length(client, urls["audit"])
        heads_before = await partition_heads(client, urls["audit"])

        idle_start = sample(services)
        await asyncio.sleep(IDLE_PROBE_S)
        idle_cpu, idle_store, idle_commands = _per_s(idle_start, sample(services))

        before = sample(services)
        gate = asyncio.Semaphore(concurrency)

        async def bounded(step: Coroutine[Any, Any, T]) -> T:
            async with gate:
                return await step

        # Phase by phase, each drained before the next, so a claim never races the event that
        # tells units of its demand (a retried claim would count as cost).
        demand_ids = await asyncio.gather(
            *(bounded(post_demand(client, urls, i)) for i in range(flows))
        )
        await drained(rabbitmq_url)
        await asyncio.gather(*(bounded(claim(client, urls, unit, d)) for d in demand_ids))
        await drained(rabbitmq_url)
        await asyncio.gather(*(bounded(cancel(client, urls, d)) for d in demand_ids))
        await drained(rabbitmq_url)
        after = sample(services)
        events = await log_length(client, urls["audit"]) - events_before
        types = await event_types(client, urls["audit"], heads_before)

    elapsed = after.at - before.at
    print(
        f"{flows} flows (post, claim, cancel), concurrency {concurrency}: {events} events "
        f"in audit's log ({events / flows:.1f} per flow), {elapsed:.1f} s including the drain"
    )
    print("per flow: " + ", ".join(f"{k} {v / flows:g}" for k, v in sorted(types.items())))
    print(
        f"{'service':<10}{'CPU ms/event':>14}{'Mongo cmds/event':>18}{'idle CPU ms/s':>15}"
        f"{'idle cmds/s':>13}{'store CPU ms/event':>20}  by name (idle included)"
    )
    totals = [0.0, 0.0]
    for name in SERVICES:
        cpu = after.cpu_s[name] - before.cpu_s[name] - idle_cpu[name] * elapsed
        store = after.store_cpu_s[name] - before.store_cpu_s[name] - idle_store[name] * elapsed
        seen = after.commands[name] - before.commands[name]
        busy = {k: v for k, v in seen.items() if k not in MONITORING}
        commands = sum(busy.values()) - idle_commands[name] * elapsed
        totals[0] += cpu
        totals[1] += commands
        by_name = ", ".join(
            f"{k} {v / events:.2f}" for k, v in sorted(busy.items(), key=lambda kv: -kv[1])
        )
        print(
            f"{name:<10}{1000 * cpu / events:>14.2f}{commands / events:>18.2f}"
            f"{1000 * idle_cpu[name]:>15.1f}{idle_commands[name]:>13.1f}"
            f"{1000 * store / events:>20.2f}  {by_name}"
        )
    print(f"{'all four':<10}{1000 * totals[0] / events:>14.2f}{totals[1] / events:>18.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__)
    parser.add_argument("--flows", type=int, default=int(os.environ.get("BENCH_FLOWS", 100)))
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--vhost-prefix", default="whistle-costs-")
    args = parser.parse_args()
    print(
        f"whistle costs: cpu {psutil.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
        "store: one embedded MongoDB stand-in per service"
    )
    with bench_vhost(args.vhost_prefix) as rabbitmq_url, system(rabbitmq_url) as services:
        asyncio.run(measure(services, rabbitmq_url, args.flows, args.concurrency))


if __name__ == "__main__":
    main()
