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
from urllib.parse import quote, urlsplit, urlunsplit

from shared.settings import DEFAULT_RABBITMQ_URL

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def bench_vhost() -> Iterator[str]:
    """A vhost of our own on the broker, deleted afterwards: nothing else on it is touched."""
    base = os.environ.get("RABBITMQ_URL", DEFAULT_RABBITMQ_URL)
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise SystemExit("bench needs rabbitmqctl to create its own vhost")
    name = f"whistle-bench-{uuid.uuid4().hex[:10]}"
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
    scratch = tempfile.TemporaryDirectory(prefix="whistle-bench-audit-")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "services.cli", "mongo", "--port", "0"),
            *("--path", os.path.join(scratch.name, "audit.sqlite")),
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
        yield Store(
            line.removeprefix("ready "),
            "the embedded MongoDB stand-in on SQLite, as make run uses it: its figures do not "
            "judge production; set MONGODB_URL to measure a real MongoDB",
            embedded=True,
        )
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        scratch.cleanup()
