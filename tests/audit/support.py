"""Reading a running audit service from tests: page, stream, wait until the log holds events."""

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import aio_pika
import httpx

from shared.broker.topology import EVENTS_EXCHANGE
from tests.conftest import bearer
from tests.support.processes import ROOT

Record = dict[str, Any]


async def page_all(
    client: httpx.AsyncClient, url: str, tok: str, limit: int = 100, **filters: Any
) -> list[Record]:
    """Every match, page by page until an empty page: with `partition`, following
    `next_after`; across partitions, following `next_cursor`."""
    items: list[Record] = []
    after = 0
    cursor: str | None = None
    busy_waits = 0
    while True:
        params: dict[str, Any] = {"limit": limit, **filters}
        if "partition" in filters:
            params["after"] = after
        elif cursor is not None:
            params["cursor"] = cursor
        response = await client.get(f"{url}/v1/events", params=params, headers=bearer(tok))
        if response.status_code == 503 and busy_waits < 20:
            # The stand-in holds reads while a transaction is open (a replica killed in one
            # holds it until it is aborted): `busy` with Retry-After is a proper answer.
            busy_waits += 1
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        if not body["items"]:
            assert body["next_after"] == after or "partition" not in filters
            assert body["next_cursor"] == cursor
            return items
        items.extend(body["items"])
        after, cursor = body["next_after"], body["next_cursor"]


async def stream_all(client: httpx.AsyncClient, url: str, tok: str, **filters: Any) -> list[Record]:
    headers = {**bearer(tok), "Accept": "application/x-ndjson"}
    async with client.stream(
        "GET", f"{url}/v1/events", params=filters, headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) async for line in response.aiter_lines() if line]


async def wait_for_log(
    client: httpx.AsyncClient,
    url: str,
    tok: str,
    ready: Callable[[list[Record]], bool],
    timeout: float = 20.0,
    **filters: Any,
) -> list[Record]:
    """Poll the log (filtered) until `ready(items)`; returns the last read."""
    deadline = time.monotonic() + timeout
    while True:
        items = await page_all(client, url, tok, limit=1000, **filters)
        if ready(items) or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.1)


def event_ids(items: list[Record]) -> list[str]:
    return [item["event"]["id"] for item in items]


def by_partition(items: list[Record]) -> dict[str, list[Record]]:
    chains: dict[str, list[Record]] = {}
    for item in items:
        chains.setdefault(item["partition"], []).append(item)
    return chains


def assert_gap_free(items: list[Record]) -> None:
    """Each partition's records are seq 1, 2, ... without a gap, each hash chained to the
    one before; no event twice anywhere."""
    for chain in by_partition(items).values():
        assert [item["seq"] for item in chain] == list(range(1, len(chain) + 1))
        for previous, item in itertools.pairwise(chain):
            assert item["prev_hash"] == previous["hash"]
    assert len(set(event_ids(items))) == len(items)


def whistle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `whistle` CLI as a user would (`env` adds to this process's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


async def publish_raw(rabbitmq_url: str, routing_key: str, body: bytes) -> None:
    """Publish bytes exactly as given (the shared helper serialises CloudEvent models)."""
    connection = await aio_pika.connect_robust(rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            EVENTS_EXCHANGE.name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key,
        )
