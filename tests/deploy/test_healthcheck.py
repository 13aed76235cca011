"""deploy/healthcheck.py, the container healthcheck: its rule, and against real processes."""

import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from services.cli.registry import SERVICES
from tests.support.processes import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "healthcheck.py"


def load_script() -> ModuleType:
    # deploy/ is not a package: the script is copied into the image and run by path.
    spec = importlib.util.spec_from_file_location("whistle_healthcheck", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*ports: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, ports)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.unit
def test_default_ports_are_the_registry_ports() -> None:
    script = load_script()
    assert {name: entry.default_port for name, entry in SERVICES.items()} == script.DEFAULT_PORTS


@pytest.mark.unit
def test_port_variables_override_the_defaults() -> None:
    script = load_script()
    assert script.configured_ports({"WHISTLE_AUDIT_PORT": "9004"}) == [8001, 8002, 8003, 9004, 8000]


@pytest.mark.unit
def test_healthy_needs_one_answer_and_every_answer_ready() -> None:
    healthy = load_script().healthy
    assert healthy({8001: 200, 8002: None})
    assert not healthy({8001: None, 8002: None})
    assert not healthy({8001: 200, 8002: 503})
    assert not healthy({})


def wait_listening(process: ServiceProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{process.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{process.service} not listening:\n{process.logs()[-2000:]}")


@pytest.mark.e2e
def test_script_reports_a_ready_service_healthy_and_an_unready_or_closed_one_not(
    start_service: Callable[..., ServiceProcess],
) -> None:
    ready = start_service("audit", wait=False)
    # Alive but not ready: nothing answers at its broker address, so /readyz says 503.
    unready = start_service("dispatch", wait=False, RABBITMQ_URL=f"amqp://127.0.0.1:{free_port()}/")
    ready.wait_ready()
    wait_listening(unready)
    closed = free_port()

    healthy = run_script(ready.port)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr

    not_ready = run_script(unready.port)
    assert not_ready.returncode == 1
    assert f"{unready.port}: 503" in not_ready.stdout

    nothing = run_script(closed)
    assert nothing.returncode == 1
    assert f"{closed}: closed" in nothing.stdout

    # One image, any service: without arguments it probes whatever listens on the ports given
    # by WHISTLE_<NAME>_PORT, as it does inside a container.
    env_ports = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={
            "WHISTLE_AUDIT_PORT": str(ready.port),
            "WHISTLE_DISPATCH_PORT": str(closed),
            "WHISTLE_UNITS_PORT": str(closed),
            "WHISTLE_NOTIFY_PORT": str(closed),
        },
    )
    assert env_ports.returncode == 0, env_ports.stdout
