"""The real stack under the console's tests: RabbitMQ (a vhost of its own), the MongoDB wire
server, the four services and the console, each a real process, started once per module."""

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from tests.support.processes import ROOT, ServiceProcess

FOUR = ("dispatch", "units", "notify", "audit")
# Patient start-up: the browser modules run beside others on a busy machine (five processes
# starting at once on two loaded cores took over a minute).
READY_S = 180


@dataclass
class Stack:
    console: ServiceProcess
    services: dict[str, ServiceProcess]
    env: dict[str, str]
    mongodb_url: str
    db_prefix: str

    @property
    def url(self) -> str:
        return self.console.url

    def console_db(self) -> "MongoClient[dict[str, object]]":
        return MongoClient(self.mongodb_url, tz_aware=True)

    def create_account(self, login: str, password: str, *args: str) -> str:
        """`whistle account create` as an operator runs it: the password on stdin."""
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "account", "create", "--login", login, *args],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout


def start_stack(env: dict[str, str], log_dir: Path, **console_env: str) -> Iterator[Stack]:
    started: list[ServiceProcess] = []
    try:
        services = {}
        for name in FOUR:
            process = ServiceProcess(name, env, log_dir)
            started.append(process)
            services[name] = process.start()
        for process in services.values():
            process.wait_ready(READY_S)
        urls = {f"WHISTLE_{name.upper()}_URL": p.url for name, p in services.items()}
        console = ServiceProcess("console", {**env, **urls, **console_env}, log_dir)
        console.env["WHISTLE_PUBLIC_URL"] = console.url
        started.append(console)
        console.start().wait_ready(READY_S)
        full_env = {**console.env}
        yield Stack(console, services, full_env, env["MONGODB_URL"], env["WHISTLE_DB_PREFIX"])
    finally:
        for process in reversed(started):
            process.terminate()


def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url, follow_redirects=False, timeout=20)


def api(stack: Stack, service: str, method: str, path: str, token: str, **kw: Any) -> Any:
    """One call to a service behind the console, as its own client would make it (set-up)."""
    answer = httpx.request(
        method,
        f"{stack.services[service].url}{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
        **kw,
    )
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


def wait_for(check: Callable[[], Any], what: str, within_s: float = 30) -> Any:
    """`check()`'s first truthy answer: the services hear of each other's events a moment later."""
    deadline = time.monotonic() + within_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.3)
