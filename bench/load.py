"""The load run: N clients for T seconds against the stack as `make run` starts it.

    python -m bench.load --clients 8 --seconds 300

Each client is one community office: its secretary posts a demand for two people, the
community's two volunteers look at the open demands until it shows there (units hears of it
from `demand.published`), each claims it, and each reads their inbox. Then the next demand.
Every shift is one minute long and the next starts when it ends, so no claim is refused for
an overlapping shift or the weekly hours cap: every refusal the run sees is a real one.

Reported per route: p50/p95/p99, responses by status, and the same for the first and last
fifth of the run (does it slow down as the store grows?). Then the checks: no demand
overbooked, `/v1/verify` ok, every accepted claim in audit. A PNG chart plots request latency
against the number of events audit had stored at that moment.
"""

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.report import RESULTS_DIR, percentile, write_results
from shared.auth import Role, issue_token
from shared.settings import DEV_JWT_SECRET

ROUTES = (
    "POST /v1/demands",
    "POST /v1/demands/{id}/claims",
    "GET /v1/open-demands",
    "GET /v1/inbox",
)
APPEAR_WITHIN_S = 30.0
TOKEN_TTL = timedelta(hours=12)


def token(role: Role, sub: str, **claims: str) -> dict[str, str]:
    signed = issue_token(DEV_JWT_SECRET, sub=sub, role=role, ttl=TOKEN_TTL, **claims)
    return {"Authorization": f"Bearer {signed}"}


@dataclass
class Sample:
    route: str
    status: int
    started: float  # seconds since the run began
    seconds: float
    stored_events: int


@dataclass
class Office:
    community: str
    secretary: dict[str, str]
    volunteers: list[tuple[str, dict[str, str]]]
    first_start: datetime
    demands: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)


class Recorder:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.began = time.perf_counter()
        self.stored_events = 0
        self.unanswered: Counter[str] = Counter()
        self.stored_curve: list[tuple[float, int]] = []

    async def call(
        self, client: httpx.AsyncClient, route: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        at = time.perf_counter() - self.began
        response, status, took = await timed_request(
            client, method, url, unanswered=self.unanswered, **kwargs
        )
        self.samples.append(Sample(route, status, at, took, self.stored_events))
        return response


async def timed_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    unanswered: Counter[str] | None = None,
    **kwargs: Any,
) -> tuple[httpx.Response | None, int, float]:
    """One request, its status and how long it took (s); no answer at all is status 0,
    counted like any other answer rather than raised (and by its error in `unanswered`)."""
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        if unanswered is not None:
            unanswered[f"{type(error).__name__}: {error}"[:120]] += 1
        return None, 0, time.perf_counter() - started
    return response, response.status_code, time.perf_counter() - started


async def setup_offices(client: httpx.AsyncClient, urls: dict[str, str], n: int) -> list[Office]:
    admin = token(Role.ADMIN, "bench-admin")
    run = uuid.uuid4().hex[:6]
    offices = []
    for i in range(n):
        community = f"c-bench-{run}-{i}"
        created = await client.post(
            f"{urls['dispatch']}/v1/communities",
            headers=admin,
            json={"id": community, "name": f"Bench {i}", "street": "s-bench", "district": "d-b"},
        )
        created.raise_for_status()
        secretary = token(Role.SECRETARY, f"sec-{i}", community=community)
        volunteers = []
        for v in range(2):
            registered = await client.post(
                f"{urls['units']}/v1/volunteers",
                headers=secretary,
                json={
                    "name": f"Volunteer {i}-{v}",
                    "community_id": community,
                    "skills": ["checkpoint"],
                    "max_hours_per_week": 168,
                    "contact": {},
                },
            )
            if registered.status_code != 201:
                raise SystemExit(
                    f"volunteer registration: {registered.status_code} {registered.text}"
                )
            volunteer_id = registered.json()["id"]
            volunteers.append(
                (volunteer_id, token(Role.VOLUNTEER, f"vol-{i}-{v}", volunteer=volunteer_id))
            )
        # Each office's shifts in a week of its own, far ahead: nothing fires during the run.
        first_start = datetime.fromisoformat("2031-01-06T00:00:00+00:00") + timedelta(weeks=i)
        offices.append(Office(community, secretary, volunteers, first_start))
    return offices


async def office_loop(
    office: Office,
    client: httpx.AsyncClient,
    urls: dict[str, str],
    recorder: Recorder,
    until: float,
) -> None:
    k = 0
    while time.perf_counter() < until:
        starts = office.first_start + timedelta(minutes=k)
        k += 1
        posted = await recorder.call(
            client,
            "POST /v1/demands",
            "POST",
            f"{urls['dispatch']}/v1/demands",
            headers={**office.secretary, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "community_id": office.community,
                "kind": "staffing",
                "title": f"Checkpoint shift {k}",
                "location": {"grid": "G4"},
                "skills": ["checkpoint"],
                "slots": 2,
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(minutes=1)).isoformat(),
                "priority": "urgent",
            },
        )
        if posted is None or posted.status_code != 201:
            await asyncio.sleep(0.2)
            continue
        demand_id = posted.json()["id"]
        office.demands.append(demand_id)
        _, first_token = office.volunteers[0]
        if not await appears_in_open_demands(
            office, client, urls, recorder, demand_id, first_token
        ):
            continue
        for _, volunteer_token in office.volunteers:
            claimed = await recorder.call(
                client,
                "POST /v1/demands/{id}/claims",
                "POST",
                f"{urls['units']}/v1/demands/{demand_id}/claims",
                headers={**volunteer_token, "Idempotency-Key": uuid.uuid4().hex},
                json={"headcount": 1},
            )
            if claimed is not None and claimed.status_code == 201:
                office.accepted.append(claimed.json()["id"])
        for _, volunteer_token in office.volunteers:
            await recorder.call(
                client,
                "GET /v1/inbox",
                "GET",
                f"{urls['notify']}/v1/inbox",
                headers=volunteer_token,
                params={"limit": 20},
            )


async def appears_in_open_demands(
    office: Office,
    client: httpx.AsyncClient,
    urls: dict[str, str],
    recorder: Recorder,
    demand_id: str,
    volunteer_token: dict[str, str],
) -> bool:
    deadline = time.perf_counter() + APPEAR_WITHIN_S
    while time.perf_counter() < deadline:
        response = await recorder.call(
            client,
            "GET /v1/open-demands",
            "GET",
            f"{urls['units']}/v1/open-demands",
            headers=volunteer_token,
            params={"community_id": office.community},
        )
        if (
            response is not None
            and response.status_code == 200
            and any(item["id"] == demand_id for item in response.json()["items"])
        ):
            return True
        await asyncio.sleep(0.05)
    return False


async def follow_audit_head(
    client: httpx.AsyncClient, url: str, recorder: Recorder, stop: asyncio.Event
) -> None:
    """How many events audit has stored: the sum of its partitions' head seqs, polled."""
    auditor = token(Role.AUDITOR, "bench-auditor")
    while not stop.is_set():
        try:
            response = await client.get(f"{url}/v1/partitions", headers=auditor)
            if response.status_code == 200:
                stored = sum(int(item["seq"]) for item in response.json()["items"])
                if stored > recorder.stored_events:
                    recorder.stored_events = stored
                    recorder.stored_curve.append(
                        (time.perf_counter() - recorder.began, recorder.stored_events)
                    )
        except httpx.HTTPError:
            pass
        with_timeout = asyncio.create_task(stop.wait())
        await asyncio.wait([with_timeout], timeout=1.0)
        with_timeout.cancel()


def route_figures(samples: list[Sample]) -> dict[str, Any]:
    latencies = sorted(s.seconds * 1000 for s in samples)
    return {
        "requests": len(samples),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "by_status": dict(sorted(Counter(str(s.status) for s in samples).items())),
    }


def summarise(recorder: Recorder, seconds: float) -> dict[str, Any]:
    fifth = seconds / 5
    by_route: dict[str, list[Sample]] = defaultdict(list)
    for sample in recorder.samples:
        by_route[sample.route].append(sample)
    routes = {}
    for route in ROUTES:
        samples = by_route.get(route, [])
        figures = route_figures(samples)
        figures["first_fifth"] = route_figures([s for s in samples if s.started < fifth])
        figures["last_fifth"] = route_figures([s for s in samples if s.started >= seconds - fifth])
        routes[route] = figures
    statuses = Counter(s.status for s in recorder.samples)
    return {
        "routes": routes,
        "requests": len(recorder.samples),
        "requests_per_s": len(recorder.samples) / seconds,
        "server_errors_5xx": sum(n for status, n in statuses.items() if status >= 500),
        "no_answer": statuses.get(0, 0),
        "no_answer_why": dict(recorder.unanswered.most_common()),
        "stored_events_at_end": recorder.stored_events,
    }


async def overbooked(
    client: httpx.AsyncClient, units_url: str, offices: list[Office]
) -> tuple[int, int]:
    """(demands checked, demands whose accepted headcount exceeds their slots)."""
    admin = token(Role.ADMIN, "bench-admin")
    checked = over = 0
    for office in offices:
        for demand_id in office.demands:
            response = await client.get(
                f"{units_url}/v1/claims", headers=admin, params={"demand_id": demand_id}
            )
            if response.status_code != 200:
                continue
            checked += 1
            accepted = sum(
                item["headcount"]
                for item in response.json()["items"]
                if item["status"] == "accepted"
            )
            over += accepted > 2
    return checked, over


async def accepted_in_audit(
    client: httpx.AsyncClient, audit_url: str, offices: list[Office], settle_s: float = 60
) -> tuple[int, int]:
    """(accepted claims, of which audit has `claim.accepted`), waiting for audit to catch up."""
    auditor = token(Role.AUDITOR, "bench-auditor")
    wanted = {claim for office in offices for claim in office.accepted}
    seen: set[str] = set()
    cursor: str | None = None  # audit's cursor across partitions (`after` is within one)
    deadline = time.monotonic() + settle_s
    while True:
        params: dict[str, str | int] = {"type": "claim.accepted", "limit": 1000}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(f"{audit_url}/v1/events", headers=auditor, params=params)
        response.raise_for_status()
        page = response.json()
        for item in page["items"]:
            seen.add(item["event"]["data"]["claim_id"])
        cursor = page.get("next_cursor") or cursor  # with no match it stays where it was
        if page["items"]:
            continue
        if wanted <= seen or time.monotonic() > deadline:
            return len(wanted), len(wanted & seen)
        await asyncio.sleep(0.5)


async def verify(client: httpx.AsyncClient, audit_url: str) -> dict[str, Any]:
    response = await client.get(
        f"{audit_url}/v1/verify", headers=token(Role.AUDITOR, "bench-auditor"), timeout=600
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def chart(recorder: Recorder, path: Path) -> Path | None:
    """Request latency against stored events: one dot per request, one colour per route."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axis = plt.subplots(figsize=(10, 6), dpi=110)
    for route in ROUTES:
        points = [(s.stored_events, s.seconds * 1000) for s in recorder.samples if s.route == route]
        if points:
            xs, ys = zip(*points, strict=True)
            axis.scatter(xs, ys, s=3, alpha=0.35, label=route)
    axis.set_yscale("log")
    axis.set_xlabel("events stored in audit when the request started")
    axis.set_ylabel("request latency (ms, log scale)")
    axis.set_title("Whistle load run: latency as the store grows")
    axis.legend(markerscale=4)
    axis.grid(True, which="both", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


async def load_run(urls: dict[str, str], clients: int, seconds: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=4 * clients + 8)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60), limits=limits) as client:
        offices = await setup_offices(client, urls, clients)
        recorder = Recorder()
        stop = asyncio.Event()
        follower = asyncio.create_task(follow_audit_head(client, urls["audit"], recorder, stop))
        until = time.perf_counter() + seconds
        await asyncio.gather(*(office_loop(o, client, urls, recorder, until) for o in offices))
        elapsed = time.perf_counter() - recorder.began
        stop.set()
        await follower
        summary = summarise(recorder, elapsed)
        summary |= {"clients": clients, "seconds": round(elapsed, 1)}
        checked, over = await overbooked(client, urls["units"], offices)
        accepted, in_audit = await accepted_in_audit(client, urls["audit"], offices)
        verified = await verify(client, urls["audit"])
        summary["checks"] = {
            "demands_posted": sum(len(o.demands) for o in offices),
            "demands_checked": checked,
            "demands_overbooked": over,
            "claims_accepted": accepted,
            "accepted_claims_in_audit": in_audit,
            "verify": verified,
        }
        picture = chart(recorder, RESULTS_DIR / "latency-vs-stored-events.png")
        summary["chart"] = str(picture) if picture else "matplotlib not installed: no chart"
        summary["stored_curve"] = recorder.stored_curve[
            :: max(1, len(recorder.stored_curve) // 200)
        ]
        return summary


TARGETS = {"p50_ms": 100.0, "p95_ms": 250.0}
WRITE_ROUTES = ("POST /v1/demands", "POST /v1/demands/{id}/claims")


def judge(summary: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """The issue's targets, each with whether this run met it."""
    verdicts = [
        ("no 5xx", summary["server_errors_5xx"] == 0, f"{summary['server_errors_5xx']} 5xx")
    ]
    for route in WRITE_ROUTES:
        figures = summary["routes"][route]
        for key, limit in TARGETS.items():
            value = figures[key]
            verdicts.append(
                (f"{route} {key} <= {limit:.0f}", value is not None and value <= limit, f"{value}")
            )
        first = figures["first_fifth"]["p95_ms"]
        last = figures["last_fifth"]["p95_ms"]
        ratio = (last / first) if first and last else None
        verdicts.append(
            (
                f"{route} last fifth p95 <= 1.3x first",
                ratio is not None and ratio <= 1.3,
                f"{ratio:.2f}x" if ratio else "n/a",
            )
        )
    checks = summary["checks"]
    verdicts.append(
        (
            "no demand overbooked",
            checks["demands_overbooked"] == 0,
            str(checks["demands_overbooked"]),
        )
    )
    verdicts.append(
        ("/v1/verify ok", bool(checks["verify"].get("ok")), json.dumps(checks["verify"]))
    )
    verdicts.append(
        (
            "every accepted claim in audit",
            checks["accepted_claims_in_audit"] == checks["claims_accepted"],
            f"{checks['accepted_claims_in_audit']}/{checks['claims_accepted']}",
        )
    )
    return verdicts


def print_load(summary: dict[str, Any]) -> None:
    print(
        f"load run: {summary['clients']} clients x {summary['seconds']} s, "
        f"{summary['requests']} requests ({summary['requests_per_s']:.1f}/s), "
        f"{summary['stored_events_at_end']} events stored in audit at the end"
    )
    header = (
        f"  {'route':<30} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8}  "
        f"{'first p95':>9} {'last p95':>9}  statuses"
    )
    print(header)
    for route, figures in summary["routes"].items():

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}"

        print(
            f"  {route:<30} {figures['requests']:>6} {ms(figures['p50_ms']):>8} "
            f"{ms(figures['p95_ms']):>8} {ms(figures['p99_ms']):>8}  "
            f"{ms(figures['first_fifth']['p95_ms']):>9} {ms(figures['last_fifth']['p95_ms']):>9}  "
            f"{figures['by_status']}"
        )
    print("  (latencies in ms; first/last: the first and last fifth of the run)")
    for why, count in summary.get("no_answer_why", {}).items():
        print(f"  no answer (status 0) x{count}: {why}")
    for label, ok, value in judge(summary):
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<46} {value}")
    print(f"  chart: {summary['chart']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    from bench.infra import bench_vhost
    from bench.report import describe_run
    from bench.stack import whistle_stack

    with bench_vhost() as rabbitmq_url, whistle_stack(rabbitmq_url) as stack:
        summary = asyncio.run(load_run(stack.urls, args.clients, args.seconds))
        summary["store_bytes"] = stack.store_bytes()
    print_load(summary)
    path = write_results(
        {"run": describe_run(embedded=stack.embedded), "load": summary}, merge=True
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
