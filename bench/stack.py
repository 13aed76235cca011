"""The stack as `make run` starts it (`whistle run`), on the bench's own vhost, ports and data.

With MONGODB_URL unset each service gets its own embedded store, exactly as `make run` does;
the stores' URLs are read from the supervisor's banner so a second units process (claims
with two units) can join units' store.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.infra import ROOT, free_port, store_base_port
from services.cli.registry import SERVICES

STORE_LINE = re.compile(r"MongoDB for (\w+): embedded stand-in at (\S+),")


@dataclass
class Stack:
    urls: dict[str, str]
    env: dict[str, str]
    data_dir: Path
    store_urls: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def embedded(self) -> bool:
        return bool(self.store_urls)

    def store_bytes(self) -> dict[str, int]:
        return {
            path.stem: path.stat().st_size
            for path in sorted(self.data_dir.glob("*.sqlite"))
            if path.exists()
        }

    def start_extra(
        self, service: str, *, report: re.Pattern[str] | None = None, timeout: float = 60.0
    ) -> str:
        """One more process of `service` on the same store and vhost; its URL once ready.

        With `report`, the lines of its output that match join the stack's lines (prefixed
        `<service>-2 | `), so its errors are reported with the others'; else it is silent."""
        port = free_port()
        env = {**self.env, f"WHISTLE_{service.upper()}_PORT": str(port)}
        if service in self.store_urls:
            env["MONGODB_URL"] = self.store_urls[service]
        output = subprocess.DEVNULL if report is None else subprocess.PIPE
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", service],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT if report is not None else subprocess.DEVNULL,
        )
        self.extra.append(process)
        if report is not None:
            threading.Thread(
                target=self._report, args=(process, service, report), daemon=True
            ).start()
        url = f"http://127.0.0.1:{port}"
        wait_ready({f"{service}-2": url}, process, timeout)
        return url

    def _report(
        self, process: subprocess.Popen[bytes], service: str, pattern: re.Pattern[str]
    ) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if pattern.search(line):
                self.lines.append(f"{service}-2 | {line}")


def wait_ready(urls: dict[str, str], process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(urls)
    while waiting:
        if process.poll() is not None:
            raise SystemExit(f"the stack exited ({process.returncode}) before it was ready")
        for name, url in list(waiting.items()):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    del waiting[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise SystemExit(f"not ready after {timeout:.0f} s: {', '.join(waiting)}")
        time.sleep(0.2)


ERROR_LINE = re.compile(r'"level": ?"(error|critical)"|Traceback|unhandled_error')


# Set by the bench for every run: the stack's own ports, vhost and mode. Every other WHISTLE_*
# variable of the caller's environment reaches the services, so a run can choose, e.g., its
# partition mode (`WHISTLE_AUDIT_PARTITION=community make bench-district`).
_SET_BY_THE_BENCH = frozenset(
    {"WHISTLE_ENV", "WHISTLE_LOG_LEVEL", *(f"WHISTLE_{name.upper()}_PORT" for name in SERVICES)}
)


def stack_environment(rabbitmq_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """The services' environment (the caller's, with the bench's own settings) and URLs."""
    env = {key: value for key, value in os.environ.items() if key not in _SET_BY_THE_BENCH}
    env |= {
        "RABBITMQ_URL": rabbitmq_url,
        "WHISTLE_ENV": "development",  # what `make run` runs
        "WHISTLE_LOG_LEVEL": "WARNING",  # the bench reads figures, not logs
    }
    urls = {}
    for name in SERVICES:
        port = free_port()
        env[f"WHISTLE_{name.upper()}_PORT"] = str(port)
        urls[name] = f"http://127.0.0.1:{port}"
    return env, urls


@contextmanager
def whistle_stack(rabbitmq_url: str, *, keep_data: Path | None = None) -> Iterator[Stack]:
    env, urls = stack_environment(rabbitmq_url)
    with tempfile.TemporaryDirectory(prefix="whistle-bench-") as scratch:
        data_dir = keep_data or Path(scratch) / "var"
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "services.cli", "run"),
                *("--data", str(data_dir)),
                *("--mongo-port", str(store_base_port(len(SERVICES)))),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack = Stack(urls, env, data_dir)

        def read() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                stack.lines.append(line)
                if match := STORE_LINE.search(line):
                    stack.store_urls[match.group(1)] = match.group(2)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            try:
                wait_ready(urls, process, 300)
            except SystemExit:
                print("\n".join(stack.lines[-60:]))  # what the services said meanwhile
                raise
            yield stack
        finally:
            for extra in stack.extra:
                extra.terminate()
            for extra in stack.extra:
                try:
                    extra.wait(15)
                except subprocess.TimeoutExpired:
                    extra.kill()
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
            reader.join(5)
            report_errors(stack.lines)


def report_errors(lines: list[str]) -> None:
    """A 5xx in a run must say why: print what the services logged as errors."""
    errors = [line for line in lines if ERROR_LINE.search(line)]
    if errors:
        print(f"the services logged {len(errors)} error line(s); the last ones:")
        print("\n".join(errors[-30:]))
