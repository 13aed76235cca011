"""`make run` (`whistle run`) as the README promises it: the four services and the embedded
MongoDB come up, the embedded store's warning is printed, and Ctrl-C stops everything."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.cli.registry import SERVICES
from tests.support.processes import ROOT, free_port

pytestmark = pytest.mark.e2e

EMBEDDED_WARNING_START = "the embedded MongoDB stand-in is for trying Whistle out"


def all_ready(ports: dict[str, int]) -> bool:
    for port in ports.values():
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


def listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_whistle_run_brings_up_every_service_on_the_embedded_store_and_stops_on_ctrl_c(
    rabbitmq_url: str, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in SERVICES}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("WHISTLE_") and key != "MONGODB_URL"
    }
    env |= {f"WHISTLE_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env |= {"RABBITMQ_URL": rabbitmq_url, "WHISTLE_DB_PREFIX": f"run{free_port()}_"}
    data = tmp_path / "whistle.sqlite"
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "run",
                "--data",
                str(data),
                "--mongo-port",
                str(free_port()),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not all_ready(ports):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"not ready in 60 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        output = log.read_text()
        assert EMBEDDED_WARNING_START in output
        assert data.exists()  # the embedded store keeps its data in the SQLite file
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, log.read_text()[-3000:]
    assert not any(listening(port) for port in ports.values())
    assert "whistle | stopped" in log.read_text()
