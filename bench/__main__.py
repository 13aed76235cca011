"""`make bench`: audit ingest and replay against a raw aio-pika baseline measured in the same run.

Not a test: it prints figures and ratios. It uses a vhost of its own (created and deleted
here) and, unless MONGODB_URL is set, a fresh embedded MongoDB stand-in, whose figures say
nothing about production: it scans a collection on every insert.
"""

import argparse
import asyncio
import os

from bench.audit import audit_process, measure_audit, sample_events
from bench.baseline import raw_round_trip
from bench.infra import bench_vhost, mongodb
from shared.settings import WhistleSettings


def _line(label: str, value: str) -> None:
    print(f"  {label:<44} {value}")


async def _run(rabbitmq_url: str, audit_url: str, events: int, prefetch: int) -> None:
    bodies = sample_events(events)
    raw = await raw_round_trip(rabbitmq_url, events, prefetch)
    audit = await measure_audit(rabbitmq_url, audit_url, bodies)
    print("raw aio-pika baseline (same process, same broker, quorum queue):")
    _line("publish, persistent + confirmed", f"{raw.publish_per_s:10,.0f} msg/s")
    _line("publish -> consume + ack, end to end", f"{raw.end_to_end_per_s:10,.0f} msg/s")
    print("audit service:")
    _line("ingest: publish -> stored in the chain", f"{audit.ingest_per_s:10,.0f} events/s")
    _line("replay: NDJSON stream of the whole log", f"{audit.replay_per_s:10,.0f} events/s")
    print("ratios:")
    _line("audit ingest / raw end to end", f"{audit.ingest_per_s / raw.end_to_end_per_s:10.3f}")
    _line("audit replay / raw end to end", f"{audit.replay_per_s / raw.end_to_end_per_s:10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 1000)))
    args = parser.parse_args()
    prefetch = WhistleSettings().prefetch
    with mongodb() as store, bench_vhost() as rabbitmq_url:
        print(f"whistle bench: {args.events} events, prefetch {prefetch}")
        print(f"store: {store.description}")
        if store.embedded:
            print("       (the stand-in slows down as the log grows: these figures are a floor)")
        with audit_process(rabbitmq_url, store.url) as audit_url:
            asyncio.run(_run(rabbitmq_url, audit_url, args.events, prefetch))


if __name__ == "__main__":
    main()
