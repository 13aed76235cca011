"""`whistle run`: everything up with the embedded MongoDB, one flow, Ctrl-C stops it all."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.cli.registry import SERVICES as REGISTRY
from tests.conftest import bearer
from tests.e2e.test_first_flow import demand_body
from tests.support.processes import ROOT, free_port

pytestmark = pytest.mark.e2e

SERVICES = tuple(REGISTRY)
PREFIX = re.compile(rf"^(whistle|(mongo-)?({'|'.join(SERVICES)})) *\| ")


class Output:
    """Every line the supervisor prints, collected by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line.rstrip("\n"))

    def join(self) -> None:
        self._thread.join(10)

    def text(self) -> str:
        return "\n".join(self.lines)


def _children_of(pid: int) -> dict[int, str]:
    """The live children of `pid` with their command lines (from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid:
            children[int(entry.name)] = cmdline
    return children


def _alive(pid: int, cmdline: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        current = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return current == cmdline and state != "Z"


def _cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


@pytest.fixture
def run_env(rabbitmq_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WHISTLE_")}
    env.pop("MONGODB_URL", None)  # WHISTLE_ENV unset too: `whistle run` says development
    env |= {
        "RABBITMQ_URL": rabbitmq_url,
        "WHISTLE_OUTBOX_POLL_S": "0.1",
    }
    for name in SERVICES:
        env[f"WHISTLE_{name.upper()}_PORT"] = str(free_port())
    return env


@pytest.fixture
def whistle_run(
    run_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Output]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "run",
            "--data",
            str(tmp_path / "var"),
            "--mongo-port",
            "0",
        ],
        env=run_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        yield process, output
    finally:
        print(output.text())  # shown by pytest when the test fails
        if process.poll() is None:  # the test failed before stopping it: leave nothing behind
            for pid in _children_of(process.pid):
                os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait(10)


def _wait_ready(url: str, process: subprocess.Popen[str], output: Output) -> None:
    deadline = time.monotonic() + 120  # a bound on a hang, on a busy machine
    while time.monotonic() < deadline:
        assert process.poll() is None, f"whistle run exited:\n{output.text()[-4000:]}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready:\n{output.text()[-4000:]}")


def test_whistle_run_serves_the_flow_and_stops_cleanly(
    whistle_run: tuple[subprocess.Popen[str], Output], run_env: dict[str, str], tmp_path: Path
) -> None:
    process, output = whistle_run
    urls = {
        name: f"http://127.0.0.1:{run_env[f'WHISTLE_{name.upper()}_PORT']}" for name in SERVICES
    }
    for url in urls.values():
        _wait_ready(url, process, output)
    children = _children_of(process.pid)
    # One embedded MongoDB per service, and the services.
    assert len(children) == 2 * len(SERVICES), children

    admin = _cli("token", "--role", "admin", "--sub", "tester", env=run_env)
    secretary = _cli(
        "token", "--role", "secretary", "--community", "c-run", "--sub", "wang", env=run_env
    )
    auditor = _cli("token", "--role", "auditor", "--sub", "li", env=run_env)
    community = httpx.post(
        f"{urls['dispatch']}/v1/communities",
        headers=bearer(admin),
        json={"id": "c-run", "name": "Run", "street": "s-1", "district": "d-1"},
    )
    assert community.status_code == 201, community.text
    posted = time.monotonic()
    demand = httpx.post(
        f"{urls['dispatch']}/v1/demands", headers=bearer(secretary), json=demand_body("c-run")
    )
    assert demand.status_code == 201, demand.text
    demand_id = demand.json()["id"]
    items: list[dict[str, object]] = []
    while time.monotonic() - posted < 1.0 and not items:
        items = httpx.get(
            f"{urls['audit']}/v1/events",
            params={"subject": demand_id, "type": "demand.published"},
            headers=bearer(auditor),
        ).json()["items"]
    assert len(items) == 1, f"demand.published not in audit within 1s:\n{output.text()[-3000:]}"

    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    stopped_at = time.monotonic()
    assert process.wait(20) == 0
    took = time.monotonic() - stopped_at
    output.join()
    deadline = time.monotonic() + 5
    while any(_alive(pid, cmd) for pid, cmd in children.items()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [cmd for pid, cmd in children.items() if _alive(pid, cmd)], "orphans left"
    assert took < 10, f"stopping took {took:.1f}s"

    text = output.text()
    assert all(PREFIX.match(line) for line in output.lines), [
        line for line in output.lines if not PREFIX.match(line)
    ][:5]
    for name in SERVICES:
        assert any(line.startswith(f"{name} ") for line in output.lines), f"no {name} output"
    assert "whistle | environment: development" in text
    assert "loopback (127.0.0.1, ::1)" in text
    assert "whistle | broker: amqp://guest:****@127.0.0.1" in text
    assert "guest:guest" not in text
    assert "whistle | MongoDB: starting one embedded stand-in per service" in text
    for name in SERVICES:
        assert re.search(rf"whistle \| MongoDB for {name}: embedded stand-in at mongodb://", text)
        assert (tmp_path / "var" / f"{name}.sqlite").exists()
    assert re.search(r"whistle \| WARNING: the embedded MongoDB stand-in .*MONGODB_URL", text)
    for name, url in urls.items():
        assert f"{name} {url}" in text  # the ports it really uses
    assert "whistle | ready: every service answers /readyz" in text
    assert "whistle | stopped" in text
    # A fresh store has no admin: the banner shows the first one's password, once.
    assert re.search(
        r"whistle \| console: created the first admin account: login 'admin', "
        r"password '\S{12,}'",
        text,
    )


def _start_run(run_env: dict[str, str], data: Path) -> tuple[subprocess.Popen[str], Output]:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--data", str(data), "--mongo-port", "0"],
        env=run_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, Output(process)


def _crash(process: subprocess.Popen[str]) -> None:
    """SIGKILL the supervisor, every service and every store at once: nothing shuts down."""
    children = _children_of(process.pid)
    process.kill()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(pid, cmd) for pid, cmd in children.items()) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_whistle_run_restarts_on_stores_left_with_a_backlog(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "var"
    urls = {
        name: f"http://127.0.0.1:{run_env[f'WHISTLE_{name.upper()}_PORT']}" for name in SERVICES
    }
    admin = bearer(_cli("token", "--role", "admin", "--sub", "tester", env=run_env))
    secretary = bearer(
        _cli("token", "--role", "secretary", "--community", "c-back", "--sub", "wang", env=run_env)
    )
    auditor = bearer(_cli("token", "--role", "auditor", "--sub", "li", env=run_env))
    process, output = _start_run(run_env, data)
    try:
        for url in urls.values():
            _wait_ready(url, process, output)
        created = httpx.post(
            f"{urls['dispatch']}/v1/communities",
            headers=admin,
            json={"id": "c-back", "name": "Backlog", "street": "s-1", "district": "d-1"},
        )
        assert created.status_code == 201, created.text
        volunteer = httpx.post(
            f"{urls['units']}/v1/volunteers",
            headers=secretary,
            json={"name": "Wang", "community_id": "c-back", "skills": ["checkpoint"]},
            timeout=30,
        )
        assert volunteer.status_code == 201, volunteer.text
        posted = []
        with httpx.Client(timeout=30) as client:
            for _ in range(40):  # each fans out to units, notify and audit: they fall behind
                response = client.post(
                    f"{urls['dispatch']}/v1/demands",
                    headers=secretary,
                    json=demand_body("c-back"),
                )
                assert response.status_code == 201, response.text
                posted.append(response.json()["id"])
        _crash(process)  # mid-backlog: consumers' transactions are left open in the stores
    finally:
        if process.poll() is None:
            _crash(process)
        print(output.text()[-3000:])

    again, again_output = _start_run(run_env, data)
    try:
        for url in urls.values():
            _wait_ready(url, again, again_output)
        # The backlog is worked off after the restart: audit ends up with every demand.
        deadline = time.monotonic() + 120  # a bound on a hang, on a busy machine
        stored: set[str] = set()
        while time.monotonic() < deadline and not set(posted) <= stored:
            response = httpx.get(
                f"{urls['audit']}/v1/events",
                params={"type": "demand.published", "limit": 1000},
                headers=auditor,
            )
            stored = {item["event"]["subject"] for item in response.json()["items"]}
            time.sleep(0.5)
        assert set(posted) <= stored, f"{len(set(posted) - stored)} demands missing in audit"
        verified = httpx.get(f"{urls['audit']}/v1/verify", headers=auditor, timeout=60).json()
        assert verified["ok"] is True, verified
        again.send_signal(signal.SIGINT)
        assert again.wait(30) == 0
    finally:
        if again.poll() is None:
            _crash(again)
        again_output.join()
        print(again_output.text()[-3000:])
