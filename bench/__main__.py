"""`make bench`: every flow of Whistle beside a raw aio-pika baseline measured in the same run.

    make bench                                   # everything, load run 8 clients x 300 s
    BENCH_CLIENTS=8 BENCH_SECONDS=60 make bench   # a shorter load run
    python -m bench --seconds 60 --events 2000    # the same, as flags

Not a test: it prints figures, ratios and the issue's targets (PASS/FAIL), and writes them to
bench/results/latest.json with versions, store and machine. It uses a RabbitMQ vhost of its
own (created and deleted here). Unless MONGODB_URL is set, the stack runs on the embedded
stand-in exactly as `make run` starts it: one SQLite store per service. On a shared or busy
machine the latencies are pessimistic: the load average at the end is recorded beside them.

1. raw aio-pika: publish + consume throughput and the two-hop latency (the baselines);
2. audit ingest and replay on an audit process of its own, with its MongoDB commands per event;
3. `whistle run`: whistle -> audit and -> inbox latency, claims decided per second with two
   units processes, MongoDB commands per request and per consumed event per service;
4. the load run (bench/load.py) on the same stack, its checks and its chart.
"""

import argparse
import asyncio
import os
from typing import Any

import httpx

from bench.audit import audit_process, measure_audit, sample_events
from bench.baseline import raw_round_trip, raw_two_hop
from bench.flows import claims_race, command_costs, whistle_latency
from bench.infra import bench_vhost, mongodb
from bench.load import load_run, print_load
from bench.report import describe_run, write_results
from bench.stack import whistle_stack
from shared.settings import WhistleSettings

AUDIT_COMMANDS_TARGET = 1.5
INGEST_RATIO_TARGET = 0.3


def _line(label: str, value: str, verdict: bool | None = None) -> None:
    mark = "" if verdict is None else ("  PASS" if verdict else "  FAIL")
    print(f"  {label:<52} {value}{mark}")


def _ratio(value: float | None, base: float | None) -> float | None:
    return round(value / base, 2) if value is not None and base else None


async def _baselines(rabbitmq_url: str, events: int, prefetch: int) -> dict[str, Any]:
    raw = await raw_round_trip(rabbitmq_url, events, prefetch)
    hop = await raw_two_hop(rabbitmq_url, 200)
    return {
        "publish_per_s": round(raw.publish_per_s),
        "consume_end_to_end_per_s": round(raw.end_to_end_per_s),
        "two_hop_p50_ms": hop.p50_ms,
        "two_hop_p99_ms": hop.p99_ms,
    }


async def _audit(rabbitmq_url: str, audit_url: str, events: int) -> dict[str, Any]:
    bodies = sample_events(events)
    async with httpx.AsyncClient(timeout=30) as client:
        figures, costs = await command_costs(
            client,
            {"audit": audit_url},
            lambda: measure_audit(rabbitmq_url, audit_url, bodies),
            settle_s=0.5,
        )
    commands = costs["audit"]["commands"] or 0.0
    return {
        "events": figures.events,
        "ingest_per_s": round(figures.ingest_per_s, 1),
        "replay_per_s": round(figures.replay_per_s, 1),
        # Every command audit sent while ingesting and replaying, over the events recorded.
        "commands_per_recorded_event": round(commands / figures.events, 3),
    }


async def _flows(stack_urls: dict[str, str], second_units: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        latency, latency_costs = await command_costs(
            client, stack_urls, lambda: whistle_latency(client, stack_urls, 30)
        )
        race, race_costs = await command_costs(
            client,
            stack_urls,
            lambda: claims_race(
                client, stack_urls, second_units, volunteers=40, demands=5, slots=10
            ),
        )
    return {
        "whistle_to_audit_and_inbox": latency,
        "whistle_commands": latency_costs,
        "claims_two_units": race,
        # Only the first units process's counters: the second one's are on its own /metrics.
        "claims_commands": race_costs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 2000)))
    parser.add_argument("--clients", type=int, default=int(os.environ.get("BENCH_CLIENTS", 8)))
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 300))
    )
    args = parser.parse_args()
    prefetch = WhistleSettings().prefetch
    print(
        f"whistle bench: {args.events} events for audit, load run {args.clients} clients x "
        f"{args.seconds:.0f} s (about {args.seconds / 60 + 3:.0f} minutes in all)"
    )
    with bench_vhost() as rabbitmq_url:
        baseline = asyncio.run(_baselines(rabbitmq_url, args.events, prefetch))
        print("raw aio-pika baseline (same broker, durable quorum queues, persistent, confirmed):")
        _line("publish", f"{baseline['publish_per_s']:,} msg/s")
        _line("publish -> consume + ack", f"{baseline['consume_end_to_end_per_s']:,} msg/s")
        _line(
            "two hops, one message at a time: p50 / p99",
            f"{baseline['two_hop_p50_ms']} / {baseline['two_hop_p99_ms']} ms",
        )
        # A vhost of its own: what the audit phase leaves on its queues (a redelivery, a
        # retry republished to the exchange) must not reach the stack measured after it.
        with (
            bench_vhost() as audit_vhost,
            mongodb() as store,
            audit_process(audit_vhost, store.url) as audit_url,
        ):
            audit = asyncio.run(_audit(audit_vhost, audit_url, args.events))
        audit["ingest_ratio_to_raw_consume"] = _ratio(
            audit["ingest_per_s"], baseline["consume_end_to_end_per_s"]
        )
        audit["replay_ratio_to_raw_consume"] = _ratio(
            audit["replay_per_s"], baseline["consume_end_to_end_per_s"]
        )
        print(f"audit ({store.description}):")
        _line("ingest: publish -> stored in the chain", f"{audit['ingest_per_s']:,} events/s")
        _line(
            "ingest / raw consume",
            f"{audit['ingest_ratio_to_raw_consume']}x (target >= {INGEST_RATIO_TARGET})",
            (audit["ingest_ratio_to_raw_consume"] or 0) >= INGEST_RATIO_TARGET,
        )
        _line("replay: NDJSON stream of the whole log", f"{audit['replay_per_s']:,} events/s")
        _line(
            "MongoDB commands per recorded event",
            f"{audit['commands_per_recorded_event']} (target <= {AUDIT_COMMANDS_TARGET})",
            audit["commands_per_recorded_event"] <= AUDIT_COMMANDS_TARGET,
        )

        with whistle_stack(rabbitmq_url) as stack:
            second_units = stack.start_extra("units")
            flows = asyncio.run(_flows(stack.urls, second_units))
            latency = flows["whistle_to_audit_and_inbox"]
            for hop in ("audit", "inbox"):
                for q in ("p50", "p99"):
                    latency[f"to_{hop}_{q}_ratio_to_raw_two_hop"] = _ratio(
                        latency[f"to_{hop}_{q}_ms"], baseline[f"two_hop_{q}_ms"]
                    )
            print("whistle run (the stack as make run starts it):")
            for hop in ("audit", "inbox"):
                _line(
                    f"whistle -> {hop}: p50 / p99 (x raw two-hop)",
                    f"{latency[f'to_{hop}_p50_ms']} / {latency[f'to_{hop}_p99_ms']} ms "
                    f"({latency[f'to_{hop}_p50_ratio_to_raw_two_hop']}x / "
                    f"{latency[f'to_{hop}_p99_ratio_to_raw_two_hop']}x)",
                )
            race = flows["claims_two_units"]
            _line(
                "claims decided per second, two units processes",
                f"{race['decided_per_s']}/s, {race['decided']}/{race['claims']} decided, "
                f"overbooked {race['demands_overbooked']}",
                race["demands_overbooked"] == 0 and race["decided"] == race["claims"],
            )
            print("  MongoDB commands (per request / per consumed event):")
            for flow, costs in (
                ("post a demand", flows["whistle_commands"]),
                ("claims race", flows["claims_commands"]),
            ):
                parts = []
                for service, cost in costs.items():
                    if cost["per_unit_of_work"] is None:
                        continue
                    parts.append(
                        f"{service} {cost['per_unit_of_work']} "
                        f"({int(cost['requests'])} req, {int(cost['consumed_events'])} ev)"
                    )
                _line(f"  {flow}", "; ".join(parts))
            load = asyncio.run(load_run(stack.urls, args.clients, args.seconds))
            load["store_bytes"] = stack.store_bytes()
            embedded = stack.embedded
        print_load(load)
    path = write_results(
        {
            "run": describe_run(embedded=embedded),
            "baseline": baseline,
            "audit": audit,
            "flows": flows,
            "load": load,
        },
        merge=False,
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
