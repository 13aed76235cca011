"""A district at reduced scale: 300 communities' traffic at 10x against two replicas of every
service on this machine.

    make bench-district                                   # the default: about 8 minutes
    python -m bench.district --communities 30 --minutes 1  # a short run while developing

The stack is `whistle run`'s (bench/stack.py: its own vhost, one embedded store per service
unless MONGODB_URL is set), plus a second process of every service on the same vhost and
store: consumers compete on the same queues, outbox relays and timers share their leases, and
every HTTP call goes to the two replicas in turn. The traffic is bench/district_model.py's
plan (docs/scale.md's rate: 5 demands a day per community, from the morning peak), replayed
in real time at `--speed`.

Reported (and written to bench/results/district.json, with the chart district-queues.png):

- throughput per service: events consumed/s over the replay, from each replica's
  `whistle_messages_consumed_total`, and how the two replicas shared them;
- queue depths over time from `rabbitmqctl list_queues` (ready + unacknowledged);
- latency: whistle -> in audit (audit's log, followed by paging `/v1/events`, seen within one
  poll of 0.1 s) and whistle -> in a volunteer's inbox (polled every 0.1 s), both timed from
  the moment the secretary's POST was sent; and every route's request latency;
- correctness: no demand overbooked (units' claims per demand), every partition of audit's
  chain verifies, no event lost (every replica's confirmed publishes against audit's log, by
  type), every write the services answered 2xx has its event in audit, nothing dead-lettered.

Not a test: figures and PASS/FAIL lines. On the shared 2-core machine the latencies are
pessimistic (the load average is recorded beside them).
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from pymongo import AsyncMongoClient

from bench.district_model import (
    ESCALATION_STEP_S,
    Action,
    Claimant,
    District,
    Plan,
    TrafficModel,
    plan,
)
from bench.district_report import (
    Counters,
    Observations,
    Request,
    build_report,
    chart,
    partition_verdicts,
    published_vs_recorded,
    read_counters,
    read_list_queues,
    table,
)
from bench.infra import bench_vhost
from bench.load import timed_request, token
from bench.report import RESULTS_DIR, describe_run
from bench.stack import whistle_stack
from services.cli.registry import SERVICES
from shared.auth import Role
from shared.events.catalogue import PRIVATE_TYPES
from shared.store.outbox import OUTBOX_COLLECTION

SERIOUS = re.compile(r'"level": ?"(error|critical)"')
RESULTS = RESULTS_DIR / "district.json"
CHART = RESULTS_DIR / "district-queues.png"
PROBE_EVERY_S = 0.1
PROBE_WITHIN_S = 120.0
RETRY_WITHIN_S = 30.0  # a claim may arrive before units heard of the demand or escalation
DRAIN_WITHIN_S = 240.0
SETUP_CONCURRENCY = 8
# Claim events carry the claim's id in data; demand events the demand's.
CLAIM_TYPES = ("claim.accepted", "claim.withdrawn", "claim.checked_in", "claim.completed")


# --- the stack: two processes of every service ----------------------------------------------


class Replicas:
    """Each service's replicas by name (`units-1`, `units-2`), and a turn-taking chooser."""

    def __init__(self, urls: dict[str, list[str]]) -> None:
        self.urls = urls
        self._turns = {service: count() for service in urls}

    def next(self, service: str) -> str:
        options = self.urls[service]
        return options[next(self._turns[service]) % len(options)]

    def named(self) -> dict[str, str]:
        return {
            f"{service}-{n}": url
            for service, urls in self.urls.items()
            for n, url in enumerate(urls, start=1)
        }


# --- the people ------------------------------------------------------------------------------


@dataclass
class People:
    run: str
    community_ids: list[str]
    secretaries: list[dict[str, str]]
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # Claimant.key -> header
    inbox_of: dict[int, dict[str, str]] = field(default_factory=dict)  # community -> header


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Request] = []

    async def call(
        self, client: httpx.AsyncClient, route: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        response, status, took = await timed_request(client, method, url, **kwargs)
        self.requests.append(Request(route, status, took))
        return response


async def _until_known(
    call: Callable[[], Awaitable[httpx.Response | None]], waiting_for: tuple[int, ...]
) -> httpx.Response | None:
    """Repeat while the answer says the service has not yet heard what the call refers to,
    or is busy (503: nothing was changed; again after its Retry-After, as a client should)."""
    deadline = time.monotonic() + RETRY_WITHIN_S
    while True:
        response = await call()
        if response is None or response.status_code not in (*waiting_for, 503):
            return response
        if time.monotonic() > deadline:
            return response
        pause = 0.2
        if response.status_code == 503:
            with contextlib.suppress(ValueError):
                pause = min(5.0, float(response.headers.get("Retry-After", "1")))
        await asyncio.sleep(pause)


async def setup(
    client: httpx.AsyncClient,
    replicas: Replicas,
    district: District,
    speed: float,
    posting: set[int],
) -> People:
    """Every community and unit; volunteers in the communities the plan posts in (elsewhere
    they would receive nothing and claim nothing: registering them would only lengthen the
    setup)."""
    run = uuid.uuid4().hex[:6]
    admin = token(Role.ADMIN, "district-admin")
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    people = People(
        run,
        [f"c-{run}-{i:03d}" for i in range(district.communities)],
        [
            token(Role.SECRETARY, f"sec-{i}", community=f"c-{run}-{i:03d}")
            for i in range(district.communities)
        ],
    )

    async def post(service: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        async with gate:
            response = await _until_known(
                lambda: client.post(f"{replicas.next(service)}{path}", json=body, headers=headers),
                (404, 422),
            )
        assert response is not None
        if response.status_code != 201:
            raise SystemExit(f"setup: POST {path}: {response.status_code} {response.text}")
        return response.json()

    async def community(i: int) -> None:
        await post(
            "dispatch",
            "/v1/communities",
            {
                "id": people.community_ids[i],
                "name": f"Community {i}",
                "street": f"s-{run}-{district.street_of(i):02d}",
                "district": f"d-{run}",
                "escalation_step_s": ESCALATION_STEP_S / speed,
            },
            admin,
        )

    await asyncio.gather(*(community(i) for i in range(district.communities)))

    async def unit(who: Claimant) -> None:
        body = await post(
            "units",
            "/v1/units",
            {
                "name": f"Unit {who.home}-{who.number}",
                "kind": "department",
                "communities": [
                    people.community_ids[c] for c in district.unit_communities(who.home, who.number)
                ],
                "skills": ["checkpoint"],
                "contact": {},
            },
            admin,
        )
        people.tokens[who.key] = token(Role.UNIT, f"unit-{who.key}", unit=body["id"])

    async def volunteer(who: Claimant) -> None:
        body = await post(
            "units",
            "/v1/volunteers",
            {
                "name": f"Volunteer {who.home}-{who.number}",
                "community_id": people.community_ids[who.home],
                "skills": ["checkpoint"],
                "max_hours_per_week": 168,
                "contact": {},
            },
            people.secretaries[who.home],
        )
        header = token(Role.VOLUNTEER, f"vol-{who.key}", volunteer=body["id"])
        people.tokens[who.key] = header
        if who.number == 0:
            people.inbox_of[who.home] = header

    everyone = district.units() + [v for c in sorted(posting) for v in district.volunteers(c)]
    await asyncio.gather(*(unit(w) if w.kind == "unit" else volunteer(w) for w in everyone))
    return people


# --- observing -------------------------------------------------------------------------------


async def snapshot(client: httpx.AsyncClient, replicas: Replicas) -> dict[str, Counters]:
    """Every replica's counters; one whose /metrics did not answer is left out (not zeroed),
    so that a missed read is not taken for a fall and a rise in its rates."""

    async def one(url: str) -> Counters | None:
        for _ in range(3):
            try:
                return read_counters((await client.get(f"{url}/metrics", timeout=30)).text)
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
        return None

    named = replicas.named()
    values = await asyncio.gather(*(one(url) for url in named.values()))
    return {name: value for name, value in zip(named, values, strict=True) if value is not None}


async def list_queues(vhost: str) -> dict[str, tuple[int, int]]:
    process = await asyncio.create_subprocess_exec(
        *("rabbitmqctl", "-q", "list_queues", "-p", vhost),
        *("name", "messages_ready", "messages_unacknowledged"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    return read_list_queues(out.decode(errors="replace"))


class AuditFollower:
    """Audit's log, followed from the start by paging `/v1/events` in every partition: when
    each event was first seen, and how many of each type the log holds."""

    def __init__(self, client: httpx.AsyncClient, replicas: Replicas) -> None:
        self.client = client
        self.replicas = replicas
        self.after: dict[str | None, int] = {}  # partition (None: the single chain) -> seq
        self.types: Counter[str] = Counter()
        self.ids: set[str] = set()
        self.seen: dict[tuple[str, str], float] = {}  # (type, demand or claim id) -> when
        self.stop = asyncio.Event()
        self.auditor = token(Role.AUDITOR, "district-auditor")

    async def partitions(self) -> list[str] | None:
        """The log's partitions (`GET /v1/partitions`); None: a single chain, no such route."""
        response = await self.client.get(
            f"{self.replicas.next('audit')}/v1/partitions", headers=self.auditor, timeout=60
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return [str(item["partition"]) for item in response.json()["items"]]

    async def page(self) -> int:
        """One page from each partition, after the last seq seen in it (a partition's `seq`
        is its own; paging across partitions with a cursor would not see a partition grow
        once the cursor has passed it)."""
        names = await self.partitions()
        read = 0
        for name in names if names is not None else [None]:
            params: dict[str, str | int] = {"limit": 1000, "after": self.after.get(name, 0)}
            if name is not None:
                params["partition"] = name
            response = await self.client.get(
                f"{self.replicas.next('audit')}/v1/events",
                headers=self.auditor,
                params=params,
                timeout=60,
            )
            response.raise_for_status()
            items = response.json()["items"]
            now = time.perf_counter()
            for item in items:
                event = item["event"]
                data = event.get("data") or {}
                self.types[event["type"]] += 1
                self.ids.add(str(event["id"]))
                claim = event["type"] in CLAIM_TYPES
                if key := data.get("claim_id") if claim else data.get("demand_id"):
                    self.seen.setdefault((event["type"], str(key)), now)
                self.after[name] = int(item["seq"])
            read += len(items)
        return read

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                if await self.page():
                    continue  # more may be waiting
            except httpx.HTTPError:
                pass
            await asyncio.sleep(PROBE_EVERY_S)

    async def catch_up(self) -> None:
        while await self.page():
            pass


# --- the replay ------------------------------------------------------------------------------


def _slug(response: httpx.Response | None) -> str:
    if response is None:
        return "no answer"
    if response.status_code < 300:
        return str(response.status_code)
    try:
        kind = str(response.json().get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        kind = ""
    return f"{response.status_code} {kind}".strip()


class Replay:
    def __init__(
        self,
        the_plan: Plan,
        people: People,
        client: httpx.AsyncClient,
        replicas: Replicas,
        recorder: Recorder,
    ) -> None:
        self.plan = the_plan
        self.people = people
        self.client = client
        self.replicas = replicas
        self.recorder = recorder
        self.speed = the_plan.model.speed
        self.wall_epoch = datetime.now(UTC)
        self.epoch = time.perf_counter()
        loop = asyncio.get_running_loop()
        self.demand_ids: dict[int, asyncio.Future[str | None]] = {
            d.index: loop.create_future() for d in the_plan.demands
        }
        self.codes: dict[int, asyncio.Future[str | None]] = {
            d.index: loop.create_future() for d in the_plan.demands
        }
        self.claims: dict[tuple[int, str], asyncio.Future[str | None]] = {}
        self.claim_state: dict[tuple[int, str], str] = {}
        self.posted_at: dict[str, float] = {}
        self.outcomes: Counter[str] = Counter()
        self.written: list[tuple[str, str]] = []  # (event type, id) the services answered 2xx
        self.to_inbox_ms: list[float] = []
        self.probes_missed: Counter[str] = Counter()
        self.probes: list[asyncio.Task[None]] = []
        self.admin = token(Role.ADMIN, "district-admin")

    def when(self, sim_s: float) -> str:
        return (self.wall_epoch + timedelta(seconds=sim_s / self.speed)).isoformat()

    def claim_future(self, action: Action) -> asyncio.Future[str | None]:
        assert action.claimant is not None
        key = (action.demand, action.claimant.key)
        if key not in self.claims:
            self.claims[key] = asyncio.get_running_loop().create_future()
        return self.claims[key]

    async def run(self) -> None:
        tasks = []
        for action in self.plan.actions:
            delay = self.epoch + action.at / self.speed - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.perform(action)))
        await asyncio.gather(*tasks)
        await asyncio.gather(*self.probes)

    async def perform(self, action: Action) -> None:
        handler = {
            "post": self.post,
            "claim": self.claim,
            "withdraw": self.withdraw,
            "code": self.code,
            "check_in": self.check_in,
            "complete_claim": self.complete_claim,
            "complete_demand": self.complete_demand,
        }[action.kind]
        outcome = await handler(action)
        self.outcomes[f"{'race claim' if action.race else action.kind}: {outcome}"] += 1

    async def post(self, action: Action) -> str:
        demand = self.plan.demands[action.demand]
        secretary = self.people.secretaries[demand.community]
        started = time.perf_counter()
        response = await self.recorder.call(
            self.client,
            "POST /v1/demands",
            "POST",
            f"{self.replicas.next('dispatch')}/v1/demands",
            headers={**secretary, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "community_id": self.people.community_ids[demand.community],
                "kind": "staffing",
                "title": f"Checkpoint {demand.index}",
                "location": {"grid": f"G{demand.community % 9 + 1}"},
                "skills": ["checkpoint"],
                "slots": demand.slots,
                "starts_at": self.when(demand.starts_at),
                "ends_at": self.when(demand.ends_at),
                "fill_by": self.when(demand.fill_by),
                "priority": demand.priority,
            },
        )
        if response is None or response.status_code != 201:
            self.demand_ids[action.demand].set_result(None)
            return _slug(response)
        demand_id = str(response.json()["id"])
        self.posted_at[demand_id] = started
        self.written.append(("demand.published", demand_id))
        self.demand_ids[action.demand].set_result(demand_id)
        inbox = self.people.inbox_of.get(demand.community)
        if inbox is not None:
            self.probes.append(asyncio.create_task(self.probe_inbox(demand_id, inbox, started)))
        return "201"

    async def probe_inbox(self, demand_id: str, volunteer: dict[str, str], started: float) -> None:
        deadline = started + PROBE_WITHIN_S
        while time.perf_counter() < deadline:
            try:
                response = await self.client.get(
                    f"{self.replicas.next('notify')}/v1/inbox",
                    headers=volunteer,
                    params={"limit": 10},
                )
                if response.status_code == 200 and any(
                    item.get("demand_id") == demand_id for item in response.json()["items"]
                ):
                    self.to_inbox_ms.append((time.perf_counter() - started) * 1000)
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(PROBE_EVERY_S)
        self.probes_missed["inbox"] += 1

    async def claim(self, action: Action) -> str:
        future = self.claim_future(action)
        demand_id = await self.demand_ids[action.demand]
        assert action.claimant is not None
        if demand_id is None:
            future.set_result(None)
            return "skipped (not posted)"
        key = uuid.uuid4().hex
        claimant = self.people.tokens[action.claimant.key]
        retried = 0

        async def attempt() -> httpx.Response | None:
            nonlocal retried
            retried += 1
            return await self.recorder.call(
                self.client,
                "POST /v1/demands/{id}/claims",
                "POST",
                f"{self.replicas.next('units')}/v1/demands/{demand_id}/claims",
                headers={**claimant, "Idempotency-Key": key},
                json={"headcount": action.headcount},
            )

        # 404: units has not heard of the demand yet; 403: nor of its escalation.
        response = await _until_known(attempt, (404, 403))
        if retried > 1:
            self.outcomes["claim retried (units had not heard yet)"] += 1
        if response is not None and response.status_code == 201:
            claim_id = str(response.json()["id"])
            self.claim_state[(action.demand, action.claimant.key)] = "accepted"
            self.written.append(("claim.accepted", claim_id))
            future.set_result(claim_id)
        else:
            future.set_result(None)
        return _slug(response)

    async def withdraw(self, action: Action) -> str:
        claim_id = await self.claim_future(action)
        assert action.claimant is not None
        if claim_id is None:
            return "skipped (no claim)"
        response = await self.recorder.call(
            self.client,
            "POST /v1/claims/{id}/withdraw",
            "POST",
            f"{self.replicas.next('units')}/v1/claims/{claim_id}/withdraw",
            headers=self.people.tokens[action.claimant.key],
            json={"reason": "called away"},
        )
        if response is not None and response.status_code == 200:
            self.claim_state[(action.demand, action.claimant.key)] = "withdrawn"
            self.written.append(("claim.withdrawn", claim_id))
        return _slug(response)

    async def code(self, action: Action) -> str:
        demand_id = await self.demand_ids[action.demand]
        if demand_id is None:
            self.codes[action.demand].set_result(None)
            return "skipped (not posted)"
        demand = self.plan.demands[action.demand]
        response = await _until_known(
            lambda: self.recorder.call(
                self.client,
                "GET /v1/demands/{id}/check-in-code",
                "GET",
                f"{self.replicas.next('units')}/v1/demands/{demand_id}/check-in-code",
                headers=self.people.secretaries[demand.community],
            ),
            (404,),
        )
        ok = response is not None and response.status_code == 200
        code = str(response.json()["code"]) if response is not None and ok else None
        self.codes[action.demand].set_result(code)
        return _slug(response)

    async def check_in(self, action: Action) -> str:
        claim_id = await self.claim_future(action)
        code = await self.codes[action.demand]
        assert action.claimant is not None
        state = self.claim_state.get((action.demand, action.claimant.key))
        if claim_id is None or state != "accepted" or code is None:
            return f"skipped ({state or 'no claim'})"
        response = await self.recorder.call(
            self.client,
            "POST /v1/claims/{id}/check-in",
            "POST",
            f"{self.replicas.next('units')}/v1/claims/{claim_id}/check-in",
            headers=self.people.tokens[action.claimant.key],
            json={"code": code},
        )
        if response is not None and response.status_code == 200:
            self.claim_state[(action.demand, action.claimant.key)] = "checked_in"
            self.written.append(("claim.checked_in", claim_id))
        return _slug(response)

    async def complete_claim(self, action: Action) -> str:
        claim_id = await self.claim_future(action)
        assert action.claimant is not None
        state = self.claim_state.get((action.demand, action.claimant.key))
        if claim_id is None or state != "checked_in":
            return f"skipped ({state or 'no claim'})"
        response = await self.recorder.call(
            self.client,
            "POST /v1/claims/{id}/complete",
            "POST",
            f"{self.replicas.next('units')}/v1/claims/{claim_id}/complete",
            headers=self.people.tokens[action.claimant.key],
            json={"report": "Shift done, no incidents", "served": 40},
        )
        if response is not None and response.status_code == 200:
            self.claim_state[(action.demand, action.claimant.key)] = "completed"
            self.written.append(("claim.completed", claim_id))
        return _slug(response)

    async def complete_demand(self, action: Action) -> str:
        demand_id = await self.demand_ids[action.demand]
        if demand_id is None:
            return "skipped (not posted)"
        demand = self.plan.demands[action.demand]
        response = await self.recorder.call(
            self.client,
            "POST /v1/demands/{id}/complete",
            "POST",
            f"{self.replicas.next('dispatch')}/v1/demands/{demand_id}/complete",
            headers=self.people.secretaries[demand.community],
            json={"summary": "Done"},
        )
        if response is not None and response.status_code == 200:
            self.written.append(("demand.completed", demand_id))
        return _slug(response)


# --- checks ----------------------------------------------------------------------------------


async def overbooked(
    client: httpx.AsyncClient, replicas: Replicas, replay: Replay
) -> tuple[int, int]:
    """(demands checked, demands holding more people than slots), from units' claims."""
    admin = token(Role.ADMIN, "district-admin")
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    slots = {}
    for demand in replay.plan.demands:
        future = replay.demand_ids[demand.index]
        if future.done() and (demand_id := future.result()) is not None:
            slots[demand_id] = demand.slots

    async def one(demand_id: str, places: int) -> bool | None:
        async with gate:
            response = await client.get(
                f"{replicas.next('units')}/v1/claims",
                headers=admin,
                params={"demand_id": demand_id, "limit": 1000},
            )
        if response.status_code != 200:
            return None
        held: int = sum(
            int(item["headcount"])
            for item in response.json()["items"]
            if item["status"] in ("accepted", "checked_in", "completed")
        )
        return held > places

    results = await asyncio.gather(*(one(d, n) for d, n in slots.items()))
    checked = [r for r in results if r is not None]
    return len(checked), sum(checked)


async def verify_partitions(
    client: httpx.AsyncClient, replicas: Replicas
) -> dict[str, dict[str, Any]]:
    """Every partition's verdict: `/v1/verify` walks them all, or names them for
    `?partition=`; today's single chain is one verdict (`default`)."""
    auditor = token(Role.AUDITOR, "district-auditor")
    url = f"{replicas.urls['audit'][0]}/v1/verify"
    response = await client.get(url, headers=auditor, params={"full": "true"}, timeout=900)
    response.raise_for_status()
    body = response.json()
    names = body.get("partitions")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        verdicts = {}
        for name in names:
            one = await client.get(
                url, headers=auditor, params={"full": "true", "partition": name}, timeout=900
            )
            one.raise_for_status()
            verdicts[name] = one.json()
        return verdicts
    return {name: dict(verdict) for name, verdict in partition_verdicts(body).items()}


async def drained(
    vhost: str,
    queues: list[tuple[float, dict[str, tuple[int, int]]]],
    epoch: float,
    sample_s: float,
) -> bool:
    """Wait until every consumer queue is empty in three samples running (or give up)."""
    deadline = time.monotonic() + DRAIN_WITHIN_S
    quiet = 0
    while time.monotonic() < deadline:
        depths = await list_queues(vhost)
        queues.append((time.perf_counter() - epoch, depths))
        busy = sum(sum(d) for name, d in depths.items() if not name.endswith(".dlq"))
        quiet = quiet + 1 if busy == 0 and depths else 0
        if quiet >= 3:
            return True
        await asyncio.sleep(min(sample_s, 2.0))
    return False


async def outbox_events(store_urls: list[str]) -> tuple[dict[str, str], int]:
    """Every service's outbox, read in its store: the events relayed (id -> type) and the
    number still pending. Ids, unlike counters, do not count a republished event twice."""
    sent: dict[str, str] = {}
    pending = 0
    for url in store_urls:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        try:
            for name in await client.list_database_names():
                db = client[name]
                if OUTBOX_COLLECTION not in await db.list_collection_names():
                    continue
                async for doc in db[OUTBOX_COLLECTION].find({}, {"type": 1, "status": 1}):
                    if doc.get("status") == "sent":
                        sent[str(doc["_id"])] = str(doc.get("type"))
                    elif doc.get("status") == "pending":
                        pending += 1
        finally:
            await client.close()
    return sent, pending


def lost_events(
    sent: dict[str, str], recorded: set[str], pending: int, private: frozenset[str]
) -> dict[str, Any]:
    public = {event_id: t for event_id, t in sent.items() if t not in private}
    missing = {event_id: t for event_id, t in public.items() if event_id not in recorded}
    return {
        "relayed": len(public),
        "recorded": len(recorded),
        "lost": len(missing),
        "lost_by_type": dict(Counter(missing.values())),
        "still_pending_in_outboxes": pending,
    }


# --- the run ---------------------------------------------------------------------------------


async def simulate(
    model: TrafficModel, replicas: Replicas, vhost: str, sample_s: float, stores: list[str]
) -> Observations:
    the_plan = plan(model)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60), limits=limits) as client:
        began = time.perf_counter()
        posting = {d.community for d in the_plan.demands}
        people = await setup(client, replicas, model.district, model.speed, posting)
        print(
            f"  set up {model.district.communities} communities, {len(people.tokens)} volunteers "
            f"(in the {len(posting)} communities that post) and units in "
            f"{time.perf_counter() - began:.0f} s; waiting for the queues to drain"
        )
        await drained(vhost, [], time.perf_counter(), sample_s)
        follower = AuditFollower(client, replicas)
        await follower.catch_up()
        setup_types = Counter(follower.types)
        setup_dead = {
            n: sum(d) for n, d in (await list_queues(vhost)).items() if n.endswith(".dlq")
        }

        recorder = Recorder()
        before = await snapshot(client, replicas)
        replay = Replay(the_plan, people, client, replicas, recorder)
        epoch = replay.epoch
        samples: list[tuple[float, dict[str, Counters]]] = [(0.0, before)]
        queues: list[tuple[float, dict[str, tuple[int, int]]]] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                depths, counters = await asyncio.gather(
                    list_queues(vhost), snapshot(client, replicas)
                )
                at = time.perf_counter() - epoch
                queues.append((at, depths))
                samples.append((at, counters))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), sample_s)

        print(
            f"  replaying {len(the_plan.demands)} demands, {len(the_plan.actions)} actions over "
            f"{the_plan.last_action_s() / model.speed:.0f} s"
        )
        sampler = asyncio.create_task(sample())
        following = asyncio.create_task(follower.run())
        await replay.run()
        stop.set()
        await sampler
        drained_ok = await drained(vhost, queues, epoch, sample_s)
        replay_s = time.perf_counter() - epoch
        after = await snapshot(client, replicas)
        samples.append((replay_s, after))
        follower.stop.set()
        await following
        await follower.catch_up()

        to_audit = [
            (follower.seen[("demand.published", d)] - started) * 1000
            for d, started in replay.posted_at.items()
            if ("demand.published", d) in follower.seen
        ]
        missing_writes = [w for w in replay.written if w not in follower.seen]
        checked, over = await overbooked(client, replicas, replay)
        partitions = await verify_partitions(client, replicas)
        exact: dict[str, Any] = {"checked": False, "why": "MONGODB_URL: outboxes not read"}
        if stores:
            try:
                sent, pending = await outbox_events(stores)
                exact = {"checked": True} | lost_events(sent, follower.ids, pending, PRIVATE_TYPES)
            except Exception as error:  # the figures so far are worth keeping
                exact = {"checked": False, "why": f"{type(error).__name__}: {error}"}

    counts = the_plan.counts()
    replayed = follower.types - setup_types
    traffic = {
        "communities": model.district.communities,
        "volunteers_per_community": model.district.volunteers_per_community,
        "units": len(model.district.units()),
        "speed": model.speed,
        "start_hour": model.start_hour,
        "minutes": model.minutes,
        "seed": model.seed,
        "replicas": min(len(urls) for urls in replicas.urls.values()),
        "demands": len(the_plan.demands),
        "expected_demands": round(model.expected_demands(), 1),
        "planned_events_per_s": round(model.expected_events_per_s(), 2),
        "actions": dict(sorted(counts.items())),
        "audited_events": sum(replayed.values()),
        "audited_events_per_demand": round(sum(replayed.values()) / len(the_plan.demands), 1)
        if the_plan.demands
        else None,
        "audited_by_type": dict(sorted(replayed.items())),
    }
    return Observations(
        traffic=traffic,
        replay_s=replay_s,
        before=before,
        after=after,
        samples=samples,
        queues=queues,
        requests=recorder.requests,
        to_audit_ms=to_audit,
        to_inbox_ms=replay.to_inbox_ms,
        probes_missed={
            "audit": len(replay.posted_at) - len(to_audit),
            "inbox": replay.probes_missed["inbox"],
        },
        outcomes=replay.outcomes,
        checks={
            "drained": drained_ok,
            "demands_checked": checked,
            "demands_overbooked": over,
            "partitions": partitions,
            "events": published_vs_recorded(after, follower.types, PRIVATE_TYPES),
            "events_by_id": exact,
            "dead_lettered_in_setup": sum(setup_dead.values()),
            "dead_letter_queues_at_start": setup_dead,
            "writes_answered": len(replay.written),
            "writes_missing_in_audit": len(missing_writes),
            "writes_missing_examples": missing_writes[:5],
        },
    )


def run(model: TrafficModel, replicas_per_service: int, sample_s: float) -> dict[str, Any]:
    with bench_vhost() as rabbitmq_url, whistle_stack(rabbitmq_url) as stack:
        urls = {name: [url] for name, url in stack.urls.items()}
        for name in SERVICES:
            for _ in range(replicas_per_service - 1):
                # Warnings of retried work come with tracebacks; only errors are worth reporting.
                urls[name].append(stack.start_extra(name, report=SERIOUS, timeout=120))
        vhost = unquote(urlsplit(rabbitmq_url).path.removeprefix("/"))
        print(
            f"  stack up: {', '.join(f'{n} x{len(u)}' for n, u in urls.items())} on vhost {vhost}"
        )
        stores = list(stack.store_urls.values())
        observations = asyncio.run(simulate(model, Replicas(urls), vhost, sample_s, stores))
        observations.checks["store_bytes"] = stack.store_bytes()
        embedded = stack.embedded
    report = build_report(observations, describe_run(embedded=embedded))
    picture = chart(report, observations.queues, CHART)
    report["chart"] = str(picture) if picture else "matplotlib not installed: no chart"
    report["queue_samples"] = [
        {"at_s": round(at, 1), "depths": {n: sum(d) for n, d in depths.items()}}
        for at, depths in observations.queues
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.district",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = os.environ.get
    parser.add_argument("--communities", type=int, default=int(env("DISTRICT_COMMUNITIES", 300)))
    parser.add_argument(
        "--minutes",
        type=float,
        default=float(env("DISTRICT_MINUTES", 2)),
        help="real minutes of posting; each demand's story runs 2 more (at 10x)",
    )
    parser.add_argument("--speed", type=float, default=float(env("DISTRICT_SPEED", 10)))
    parser.add_argument("--start-hour", type=int, default=9, choices=range(24))
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--sample-s", type=float, default=5.0, help="queue and metrics sampling")
    args = parser.parse_args()
    model = TrafficModel(
        district=District(communities=args.communities),
        speed=args.speed,
        start_hour=args.start_hour,
        minutes=args.minutes,
        seed=args.seed,
    )
    print(
        f"district simulation: {args.communities} communities at {args.speed:g}x, "
        f"{args.minutes:g} min of posting, {args.replicas} replicas per service "
        f"(load average {os.getloadavg()[0]:.2f})"
    )
    report = run(model, args.replicas, args.sample_s)
    print(table(report))
    print(f"results: {RESULTS}\nchart: {report['chart']}")


if __name__ == "__main__":
    main()
