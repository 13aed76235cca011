"""What a benchmark run stands on: its own RabbitMQ vhost and a MongoDB (embedded unless given)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from shared.settings import DEFAULT_RABBITMQ_URL

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


PORT_RANGE_ENV = "WHISTLE_BENCH_PORTS"
_handed_out: set[int] = set()


def _port_range() -> range | None:
    """`WHISTLE_BENCH_PORTS=9600-9699`: the bench's ports come only from there."""
    spec = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not spec:
        return None
    low, _, high = spec.partition("-")
    try:
        return range(int(low), int(high or low) + 1)
    except ValueError:
        message = f"{PORT_RANGE_ENV}={spec!r}: expected FIRST-LAST, e.g. 9600-9699"
        raise SystemExit(message) from None


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int = 1) -> list[int]:
    """`count` consecutive free ports, never handed out before in this run.

    On a machine shared with other people's stacks, an ephemeral port (the kernel's pick) can
    be taken by someone else between our check and the service's bind; with
    WHISTLE_BENCH_PORTS set, every port comes from a range nobody else uses.
    """
    ports = _port_range()
    if ports is None:
        if count != 1:
            raise ValueError("consecutive ports need WHISTLE_BENCH_PORTS")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        return [port]
    for first in ports:
        block = range(first, first + count)
        if block[-1] not in ports:
            break
        if any(port in _handed_out for port in block):
            continue
        if all(_bindable(port) for port in block):
            _handed_out.update(block)
            return list(block)
    raise SystemExit(f"no {count} free consecutive port(s) left in {PORT_RANGE_ENV}")


def free_port() -> int:
    return free_ports(1)[0]


def store_base_port(stores: int) -> int:
    """`whistle run --mongo-port`: the first of `stores` ports from the range, else 0 (each
    embedded server binds a port of the kernel's choosing and prints it)."""
    return free_ports(stores)[0] if _port_range() is not None else 0


@contextmanager
def bench_vhost(prefix: str = "whistle-bench-") -> Iterator[str]:
    """A vhost of our own on the broker, deleted afterwards: nothing else on it is touched."""
    base = os.environ.get("RABBITMQ_URL", DEFAULT_RABBITMQ_URL)
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise SystemExit("bench needs rabbitmqctl to create its own vhost")
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    user = urlsplit(base).username or "guest"
    subprocess.run([ctl, "-q", "add_vhost", name], check=True, capture_output=True)
    try:
        subprocess.run(
            [ctl, "-q", "set_permissions", "-p", name, user, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        parts = urlsplit(base)
        yield urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), "", ""))
    finally:
        subprocess.run([ctl, "-q", "delete_vhost", name], check=False, capture_output=True)


def stop(process: "subprocess.Popen[Any]", within_s: float = 10.0) -> None:
    """Ask a process to end (SIGTERM); kill it if it has not within `within_s`."""
    process.terminate()
    try:
        process.wait(within_s)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def embedded_mongo(
    port: int = 0, path: str | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The embedded MongoDB stand-in (`whistle mongo`), as `make run` uses it: its URL once it
    said ready, and its process (whose CPU a benchmark may count)."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "services.cli", "mongo", "--port", str(port)),
            *(("--path", path) if path is not None else ()),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("ready "):
            raise SystemExit(f"the embedded MongoDB did not start: {line!r}")
        yield line.removeprefix("ready "), process
    finally:
        stop(process)


@dataclass(frozen=True)
class Store:
    url: str
    description: str
    embedded: bool


@contextmanager
def mongodb() -> Iterator[Store]:
    if url := os.environ.get("MONGODB_URL"):
        yield Store(url, f"MongoDB at {url}", embedded=False)
        return
    with (
        tempfile.TemporaryDirectory(prefix="whistle-bench-audit-") as scratch,
        embedded_mongo(free_port(), os.path.join(scratch, "audit.sqlite")) as (url, _),
    ):
        yield Store(
            url,
            "the embedded MongoDB stand-in on SQLite, as make run uses it: its figures do not "
            "judge production; set MONGODB_URL to measure a real MongoDB",
            embedded=True,
        )
