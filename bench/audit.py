"""Audit ingest and replay, measured against a real audit process.

Ingest: N CloudEvents published (persistent, confirmed) to `whistle.events`, timed from the
first publish until the log's head reaches seq N. Replay: the whole log streamed back as
NDJSON over HTTP (what `whistle replay` reads), timed to the last line.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import aio_pika
import httpx

from bench.baseline import publish_confirmed
from bench.infra import ROOT, free_port
from shared.auth import Role, issue_token
from shared.broker.topology import EVENTS_EXCHANGE
from shared.clock import utcnow
from shared.events import catalogue as c
from shared.events.envelope import make_event
from shared.settings import DEV_JWT_SECRET


def sample_events(n: int) -> list[tuple[str, bytes]]:
    """(routing key, body) of N claim events spread over a few demands and communities."""
    start = utcnow()
    bodies = []
    for i in range(n):
        demand = f"d-{i % 50}"
        data = c.ClaimAccepted(
            claim_id=f"k-{i}",
            demand_id=demand,
            community_id=f"c-{i % 7}",
            claimant=c.Claimant(type="unit", id=f"u-{i % 13}"),
            headcount=1,
            filled=1,
            slots=8,
        )
        event = make_event(
            data,
            source="/whistle/bench",
            subject=demand,
            correlationid=demand,
            causationid=f"bench-{i}",
            actor="bench",
            time=start + timedelta(milliseconds=i),
        )
        bodies.append((event.type, json.dumps(event.wire()).encode()))
    return bodies


@contextmanager
def audit_process(rabbitmq_url: str, mongodb_url: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "RABBITMQ_URL": rabbitmq_url,
        "MONGODB_URL": mongodb_url,
        "WHISTLE_DB_PREFIX": f"bench{uuid.uuid4().hex[:8]}_",
        "WHISTLE_AUDIT_PORT": str(port),
        "WHISTLE_LOG_LEVEL": "WARNING",
        # Audit publishes nothing; an idle relay renewing its lease often only adds writes.
        "WHISTLE_OUTBOX_POLL_S": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "audit"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a busy machine starts a service slowly
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the audit service exited ({process.returncode})")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the audit service did not become ready in 180 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass(frozen=True)
class AuditFigures:
    events: int
    ingest_s: float
    replay_s: float

    @property
    def ingest_per_s(self) -> float:
        return self.events / self.ingest_s

    @property
    def replay_per_s(self) -> float:
        return self.events / self.replay_s


async def _head_reaches(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], n: int
) -> None:
    # The log is partitioned: its length is the sum of the partitions' head seqs.
    while True:
        response = await client.get(f"{url}/v1/partitions", headers=headers)
        if response.status_code == 200 and (
            sum(int(item["seq"]) for item in response.json()["items"]) >= n
        ):
            return
        await asyncio.sleep(0.05)


async def measure_audit(
    rabbitmq_url: str, audit_url: str, bodies: list[tuple[str, bytes]]
) -> AuditFigures:
    token = issue_token(DEV_JWT_SECRET, sub="bench", role=Role.AUDITOR)
    headers = {"Authorization": f"Bearer {token}"}
    n = len(bodies)
    connection = await aio_pika.connect_robust(rabbitmq_url)
    async with connection, httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            EVENTS_EXCHANGE.name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        started = time.perf_counter()
        await publish_confirmed(exchange, bodies)
        await _head_reaches(client, audit_url, headers, n)
        ingest_s = time.perf_counter() - started

        started = time.perf_counter()
        lines = 0
        async with client.stream(
            "GET", f"{audit_url}/v1/events", headers={**headers, "Accept": "application/x-ndjson"}
        ) as response:
            async for line in response.aiter_lines():
                lines += bool(line)
        replay_s = time.perf_counter() - started
    if lines != n:
        raise SystemExit(f"replay returned {lines} events, expected {n}")
    return AuditFigures(n, ingest_s, replay_s)
