"""The district simulation's figures, from what the run observed (pure: parsing and arithmetic).

Inputs are plain observations: each replica's Prometheus counters before and after the
replay (and sampled during it), the queue depths `rabbitmqctl list_queues` gave over time,
the latencies the probes timed, each request's route, status and time, and the checks'
results. `build_report` turns them into the JSON `bench/results/district.json` holds;
`table` prints it; `chart` draws the PNG.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.report import percentile


@dataclass(frozen=True)
class Counters:
    """One replica's counters at one moment (since the process started)."""

    consumed_ok: float = 0.0
    consumed_other: float = 0.0  # retried, failed or dead-lettered deliveries
    published: Mapping[str, float] = field(default_factory=dict)  # confirmed, by event type
    requests: float = 0.0  # /v1 requests answered
    duplicates: float = 0.0  # audit: deliveries of events its log already held


def read_counters(text: str) -> Counters:
    """The counters bench needs from a `/metrics` page."""
    consumed_ok = consumed_other = requests = duplicates = 0.0
    published: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue  # `_created` timestamps
            if family.name == "whistle_messages_consumed":
                if sample.labels.get("outcome") == "ok":
                    consumed_ok += sample.value
                else:
                    consumed_other += sample.value
            elif family.name == "whistle_messages_published":
                published[sample.labels.get("type", "?")] += sample.value
            elif family.name == "whistle_audit_duplicates_ignored":
                duplicates += sample.value
            elif family.name == "whistle_http_requests" and sample.labels.get(
                "route", ""
            ).startswith("/v1/"):
                requests += sample.value
    return Counters(consumed_ok, consumed_other, dict(published), requests, duplicates)


def service_of(replica: str) -> str:
    """`notify-2` -> `notify`."""
    return replica.rsplit("-", 1)[0]


def read_list_queues(text: str) -> dict[str, tuple[int, int]]:
    """`rabbitmqctl -q list_queues name messages_ready messages_unacknowledged` -> name: both.

    Newer rabbitmqctl versions print a header line even with -q; it is skipped."""
    depths: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
            continue
        depths[parts[0]] = (int(parts[1]), int(parts[2]))
    return depths


def partition_verdicts(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """`/v1/verify`'s answer, one verdict per partition.

    Today's single chain answers one verdict (it is partition `default`); a partitioned log
    may answer `partitions` as a list of verdicts naming their `partition`, or as a mapping
    from partition to verdict. Each is taken as it comes."""
    partitions = body.get("partitions")
    if isinstance(partitions, Mapping):
        return {str(name): verdict for name, verdict in partitions.items()}
    if isinstance(partitions, list):
        found: dict[str, Mapping[str, Any]] = {}
        for number, verdict in enumerate(partitions):
            if isinstance(verdict, Mapping):
                found[str(verdict.get("partition", verdict.get("name", number)))] = verdict
        return found
    return {str(body.get("partition", "default")): body}


@dataclass(frozen=True)
class Request:
    route: str
    status: int  # 0: no answer
    seconds: float


@dataclass
class Observations:
    traffic: dict[str, Any]  # the model's parameters and the plan's counts
    replay_s: float  # from the first posting to the moment every queue was empty again
    before: dict[str, Counters]  # per replica, when the replay began
    after: dict[str, Counters]  # per replica, when every queue had drained
    samples: list[tuple[float, dict[str, Counters]]]  # (seconds into the replay, per replica)
    queues: list[tuple[float, dict[str, tuple[int, int]]]]  # (seconds, name: ready, unacked)
    requests: list[Request]
    to_audit_ms: list[float]
    to_inbox_ms: list[float]
    probes_missed: dict[str, int]
    outcomes: Counter[str]  # what the replay's actions came to (e.g. "claim 201")
    checks: dict[str, Any]  # overbooking, verification, the event count comparison


def _latency(values: Iterable[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p95_ms": percentile(ordered, 95),
        "p99_ms": percentile(ordered, 99),
        "max_ms": round(ordered[-1], 1) if ordered else None,
    }


def throughput(obs: Observations) -> dict[str, Any]:
    """Per service: events consumed/s over the replay (both replicas), each replica's share,
    the busiest sampling interval's rate, and /v1 requests/s."""
    per_service: dict[str, dict[str, Any]] = {}
    for replica in sorted(obs.after):
        service = service_of(replica)
        before = obs.before.get(replica, Counters())
        after = obs.after[replica]
        entry = per_service.setdefault(
            service,
            {"consumed": 0.0, "not_ok": 0.0, "requests": 0.0, "by_replica": {}},
        )
        consumed = after.consumed_ok - before.consumed_ok
        entry["consumed"] += consumed
        entry["not_ok"] += after.consumed_other - before.consumed_other
        entry["requests"] += after.requests - before.requests
        entry["by_replica"][replica] = consumed
    peaks = _peak_rates(obs.samples)
    figures = {}
    for service, entry in per_service.items():
        total = entry["consumed"]
        figures[service] = {
            "events_consumed": int(total),
            "events_consumed_per_s": round(total / obs.replay_s, 2) if obs.replay_s else None,
            "peak_consumed_per_s": peaks.get(service),
            "deliveries_not_ok": int(entry["not_ok"]),
            "replica_share": {
                replica: round(n / total, 2) if total else None
                for replica, n in entry["by_replica"].items()
            },
            "requests_per_s": round(entry["requests"] / obs.replay_s, 2) if obs.replay_s else None,
        }
    return figures


def _peak_rates(samples: list[tuple[float, dict[str, Counters]]]) -> dict[str, float]:
    """The highest consumed/s between two successive samples, per service."""
    return {
        service: max(rate for _, rate in points)
        for service, points in consumed_series(samples).items()
        if points
    }


def consumed_series(
    samples: list[tuple[float, dict[str, Counters]]],
) -> dict[str, list[tuple[float, float]]]:
    """Per service, events consumed/s in each sampling interval (at the interval's end)."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (t0, first), (t1, second) in pairwise(samples):
        if t1 <= t0:
            continue
        rates: dict[str, float] = defaultdict(float)
        for replica, counters in second.items():
            if (earlier := first.get(replica)) is None:
                continue  # its /metrics did not answer then: no rate for this interval
            rates[service_of(replica)] += (counters.consumed_ok - earlier.consumed_ok) / (t1 - t0)
        for service, rate in sorted(rates.items()):
            series[service].append((round(t1, 1), round(rate, 2)))
    return dict(series)


def queue_figures(queues: list[tuple[float, dict[str, tuple[int, int]]]]) -> dict[str, Any]:
    """Per queue: the deepest it got (ready + unacknowledged) and when, and at the end."""
    figures: dict[str, dict[str, Any]] = {}
    for at, depths in queues:
        for name, (ready, unacked) in depths.items():
            entry = figures.setdefault(name, {"max": 0, "max_at_s": None, "end": 0})
            total = ready + unacked
            if total > entry["max"]:
                entry["max"], entry["max_at_s"] = total, round(at, 1)
            entry["end"] = total
    return dict(sorted(figures.items()))


def published_vs_recorded(
    after: Mapping[str, Counters], recorded: Mapping[str, int], private: Iterable[str]
) -> dict[str, Any]:
    """Events confirmed by the outboxes (every replica's counter) against audit's log, by type.

    Private events (personal details) are never audited, so they are left out. A relay that
    publishes an event twice (its "sent" mark lost) counts it twice here, and audit's
    idempotent append records it once: counters alone cannot tell that from a loss, which is
    why the verdict is taken on event ids (`events_by_id`) when the outboxes can be read."""
    secret = set(private)
    published: Counter[str] = Counter()
    for counters in after.values():
        for event_type, n in counters.published.items():
            if event_type not in secret:
                published[event_type] += int(n)
    types = sorted(set(published) | set(recorded))
    by_type = {
        t: {"published": published.get(t, 0), "recorded": int(recorded.get(t, 0))} for t in types
    }
    missing = sum(max(0, row["published"] - row["recorded"]) for row in by_type.values())
    unexplained = sum(max(0, row["recorded"] - row["published"]) for row in by_type.values())
    return {
        "published": sum(published.values()),
        "recorded": sum(int(n) for n in recorded.values()),
        "published_not_recorded": missing,
        "recorded_not_published": unexplained,
        # Deliveries audit recognised as events it already held: redeliveries, and the same
        # event published twice (a relay that lost its "sent" mark to a busy store).
        "audit_duplicates_ignored": int(sum(c.duplicates for c in after.values())),
        "by_type": by_type,
    }


def build_report(obs: Observations, run: Mapping[str, Any]) -> dict[str, Any]:
    by_route: dict[str, list[Request]] = defaultdict(list)
    for request in obs.requests:
        by_route[request.route].append(request)
    routes = {
        route: {
            **_latency(r.seconds * 1000 for r in requests),
            "by_status": dict(sorted(Counter(str(r.status) for r in requests).items())),
        }
        for route, requests in sorted(by_route.items())
    }
    statuses = Counter(r.status for r in obs.requests)
    queues = queue_figures(obs.queues)
    dead = {name: q for name, q in queues.items() if name.endswith(".dlq")}
    checks = dict(obs.checks)
    # Dead-lettered during the replay: what the queues hold at the end beyond the setup's.
    checks["dead_lettered"] = sum(q["end"] for q in dead.values()) - int(
        checks.get("dead_lettered_in_setup", 0)
    )
    # 503 is the contract's answer to contention (busy, nothing changed, Retry-After): the
    # replay retries it and it is counted apart; any other 5xx is a fault.
    checks["server_errors_5xx"] = sum(
        n for status, n in statuses.items() if status >= 500 and status != 503
    )
    checks["busy_503"] = statuses.get(503, 0)
    checks["no_answer"] = statuses.get(0, 0)
    return {
        "run": dict(run),
        "traffic": obs.traffic,
        "replay_s": round(obs.replay_s, 1),
        "outcomes": dict(sorted(obs.outcomes.items())),
        "throughput": throughput(obs),
        "consumed_per_s_over_time": consumed_series(obs.samples),
        "queues": queues,
        "latency": {
            "whistle_to_audit": _latency(obs.to_audit_ms),
            "whistle_to_inbox": _latency(obs.to_inbox_ms),
            "probes_missed": obs.probes_missed,
        },
        "requests": {"total": len(obs.requests), "routes": routes},
        "checks": checks,
        "verdicts": verdicts(checks),
    }


def verdicts(checks: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The correctness the issue asks for, each with whether this run has it."""
    partitions = checks.get("partitions", {})
    events = checks.get("events", {})
    rows = [
        (
            "no demand overbooked",
            checks.get("demands_overbooked") == 0 and checks.get("demands_checked", 0) > 0,
            f"{checks.get('demands_overbooked')} of {checks.get('demands_checked')} checked",
        ),
        (
            "every partition verifies",
            bool(partitions) and all(v.get("ok") is True for v in partitions.values()),
            ", ".join(
                f"{name}: {'ok' if v.get('ok') else 'BROKEN'} ({v.get('events', '?')} events)"
                for name, v in sorted(partitions.items())
            )
            or "no verdict",
        ),
        _lost_verdict(events, checks.get("events_by_id", {})),
        (
            "every answered write's event in audit",
            checks.get("writes_missing_in_audit") == 0,
            f"{checks.get('writes_missing_in_audit')} missing",
        ),
        (
            "nothing dead-lettered during the replay",
            checks.get("dead_lettered") == 0,
            f"{checks['dead_lettered']} (in the setup before it: "
            f"{checks.get('dead_lettered_in_setup', 0)})",
        ),
        (
            "no 5xx but 503 busy",
            checks.get("server_errors_5xx") == 0,
            f"{checks['server_errors_5xx']} (503 busy, retried: {checks.get('busy_503', 0)})",
        ),
    ]
    return [{"check": name, "ok": bool(ok), "value": value} for name, ok, value in rows]


def _lost_verdict(counted: Mapping[str, Any], by_id: Mapping[str, Any]) -> tuple[str, bool, str]:
    """By ids when the outboxes were read (exact), else by the counters (a republished event
    then looks like a lost one)."""
    name = "no event lost (published = recorded in audit)"
    tally = (
        f"counters: {counted.get('published')} published, {counted.get('recorded')} recorded, "
        f"{counted.get('audit_duplicates_ignored', 0)} duplicates ignored"
    )
    if by_id.get("checked"):
        ok = by_id.get("lost") == 0 and by_id.get("relayed", 0) > 0
        ok = ok and by_id.get("still_pending_in_outboxes") == 0
        return (
            name,
            ok,
            f"ids: {by_id.get('relayed')} relayed, {by_id.get('lost')} not in audit, "
            f"{by_id.get('still_pending_in_outboxes')} pending; {tally}",
        )
    ok = counted.get("published_not_recorded") == 0 and counted.get("published", 0) > 0
    return name, ok, tally


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(report: Mapping[str, Any]) -> str:
    """The figures as the run prints them (and docs/scale.md quotes them)."""
    traffic = report["traffic"]
    lines = [
        f"district simulation: {traffic['communities']} communities, {traffic['speed']:g}x "
        f"from {traffic['start_hour']:02d}:00, {traffic['minutes']:g} min of posting "
        f"({traffic['demands']} demands, {traffic['planned_events_per_s']:.1f} events/s by "
        f"the model), {traffic['replicas']} replicas per service; replay {report['replay_s']} s",
        "",
        f"{'service':<10}{'events/s':>10}{'peak/s':>9}{'events':>9}{'not ok':>8}"
        f"{'requests/s':>12}  replica shares",
    ]
    for service, row in report["throughput"].items():
        if not (row["events_consumed"] or row["requests_per_s"]):
            continue  # the console: no consumers, and the replay does not call it
        shares = ", ".join(f"{r} {s}" for r, s in row["replica_share"].items())
        lines.append(
            f"{service:<10}{row['events_consumed_per_s'] or 0:>10.2f}"
            f"{row['peak_consumed_per_s'] or 0:>9.2f}{row['events_consumed']:>9}"
            f"{row['deliveries_not_ok']:>8}{row['requests_per_s'] or 0:>12.2f}  {shares}"
        )
    lines += ["", f"{'queue':<28}{'max depth':>10}{'at s':>8}{'at end':>8}"]
    for name, q in report["queues"].items():
        if name.endswith(".dlq") and q["max"] == 0:
            continue
        at = "-" if q["max_at_s"] is None else f"{q['max_at_s']:.0f}"
        lines.append(f"{name:<28}{q['max']:>10}{at:>8}{q['end']:>8}")
    lines += ["", f"{'latency (ms)':<34}{'n':>6}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}"]
    for label, key in (
        ("whistle -> in audit", "whistle_to_audit"),
        ("whistle -> a volunteer's inbox", "whistle_to_inbox"),
    ):
        row = report["latency"][key]
        lines.append(
            f"{label:<34}{row['n']:>6}{_ms(row['p50_ms']):>8}{_ms(row['p95_ms']):>8}"
            f"{_ms(row['p99_ms']):>8}{_ms(row['max_ms']):>8}"
        )
    for route, row in report["requests"]["routes"].items():
        lines.append(
            f"{route:<34}{row['n']:>6}{_ms(row['p50_ms']):>8}{_ms(row['p95_ms']):>8}"
            f"{_ms(row['p99_ms']):>8}{_ms(row['max_ms']):>8}  {row['by_status']}"
        )
    lines.append("")
    for verdict in report["verdicts"]:
        lines.append(
            f"{'PASS' if verdict['ok'] else 'FAIL'}  {verdict['check']:<46} {verdict['value']}"
        )
    return "\n".join(lines)


def chart(
    report: Mapping[str, Any], queues: list[tuple[float, dict[str, tuple[int, int]]]], path: Path
) -> Path | None:
    """Queue depths over time (top) and events consumed/s per service (bottom)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, (depth_axis, rate_axis) = plt.subplots(2, 1, figsize=(11, 8), dpi=110, sharex=True)
    names = sorted({name for _, depths in queues for name in depths})
    for name in names:
        xs = [at for at, depths in queues if name in depths]
        ys = [sum(depths[name]) for _, depths in queues if name in depths]
        if not any(ys):
            continue
        # Dead-letter queues dashed: what they hold was given up on (in the setup, or later).
        style = "--" if name.endswith(".dlq") else "-"
        depth_axis.plot(xs, ys, style, marker=".", label=name)
    depth_axis.set_ylabel("messages in queue (ready + unacked)")
    depth_axis.set_title("District simulation: queue depths and consumption over time")
    depth_axis.grid(True, alpha=0.3)
    depth_axis.legend(fontsize="small", ncols=2)
    for service, points in report["consumed_per_s_over_time"].items():
        if any(rate for _, rate in points):
            rate_axis.plot(
                [p[0] for p in points], [p[1] for p in points], marker=".", label=service
            )
    rate_axis.set_xlabel("seconds since the replay began")
    rate_axis.set_ylabel("events consumed/s (both replicas)")
    rate_axis.grid(True, alpha=0.3)
    rate_axis.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
