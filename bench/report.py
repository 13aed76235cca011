"""Where the figures go: `bench/results/latest.json`, with what they were measured on."""

import json
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LATEST = RESULTS_DIR / "latest.json"


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values, rounded to 0.1."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[rank], 1)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_run(*, embedded: bool) -> dict[str, Any]:
    versions = {}
    for package in ("mongoeco", "pymongo", "aio-pika", "faststream", "fastapi", "uvicorn"):
        try:
            versions[package] = version(package)
        except Exception:
            versions[package] = "not installed"
    load = os.getloadavg()
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "store": (
            "embedded mongoeco stand-in, one SQLite store per service (as make run)"
            if embedded
            else f"MongoDB at MONGODB_URL ({os.environ.get('MONGODB_URL', '?').split('@')[-1]})"
        ),
        "versions": {"python": platform.python_version(), **versions},
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "system": f"{platform.system()} {platform.release()}",
            "load_average_at_end": [round(x, 2) for x in load],
        },
    }


def write_results(section: dict[str, Any], *, merge: bool) -> Path:
    """Write (or merge into) latest.json; sections from another run are kept when merging."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    current: dict[str, Any] = {}
    if merge and LATEST.exists():
        try:
            current = json.loads(LATEST.read_text())
        except ValueError:
            current = {}
    current.update(section)
    LATEST.write_text(json.dumps(current, indent=2, default=str) + "\n")
    return LATEST
