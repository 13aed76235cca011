"""Container healthcheck: is the Whistle service listening here ready?

One image runs any of the services, so this does not need to be told which: it asks
`/readyz` on every Whistle port (the defaults, or `WHISTLE_<NAME>_PORT`) and is healthy when at
least one answers and every one that answers says 200. Ports given as arguments are asked
instead. Standard library only: the slim image has no curl, and importing the services would
make every probe pay for FastAPI's import time.

Exit status: 0 healthy, 1 not (the convention Docker's HEALTHCHECK expects).
"""

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {"dispatch": 8001, "units": 8002, "notify": 8003, "audit": 8004, "console": 8000}
TIMEOUT_S = 3.0


def configured_ports(env: dict[str, str]) -> list[int]:
    return [
        int(env.get(f"WHISTLE_{name.upper()}_PORT", default))
        for name, default in DEFAULT_PORTS.items()
    ]


def probe(port: int, path: str = "/readyz") -> int | None:
    """The HTTP status of `path` on this port, or None when nothing listens there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT_S) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def healthy(statuses: dict[int, int | None]) -> bool:
    answered = [status for status in statuses.values() if status is not None]
    return bool(answered) and all(status == 200 for status in answered)


def main(argv: list[str]) -> int:
    ports = [int(arg) for arg in argv] or configured_ports(dict(os.environ))
    statuses = {port: probe(port) for port in ports}
    ok = healthy(statuses)
    summary = ", ".join(f"{port}: {status or 'closed'}" for port, status in statuses.items())
    print(("healthy" if ok else "unhealthy") + f" ({summary})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
