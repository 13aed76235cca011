"""Finding the real RabbitMQ and MongoDB for the tests.

RabbitMQ: `RABBITMQ_URL` when set; testcontainers (`rabbitmq:3-management`) when a Docker
engine answers; otherwise the machine's RabbitMQ. Each test that runs services gets its own
vhost, so the fixed names of the contract (`whistle.events`, `<service>.<purpose>`) never
collide between tests and nothing is ever wiped.

MongoDB: `MONGODB_URL` when set; testcontainers (`mongo:7` as a one-node replica set) when
Docker answers; otherwise the embedded wire server (`whistle mongo`, in memory) in its own
process. Each test gets its own database prefix, so collections stay small.
"""

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

LOCAL_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


def docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@dataclass
class Rabbit:
    url: str
    container: Any = None

    def _ctl(self, *args: str) -> None:
        if self.container is not None:
            self.container.exec(["rabbitmqctl", *args])
        elif shutil.which("rabbitmqctl"):
            subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)
        else:
            raise RuntimeError("no way to create vhosts: no rabbitmqctl and no container")

    @property
    def can_make_vhosts(self) -> bool:
        return self.container is not None or shutil.which("rabbitmqctl") is not None

    def vhost_url(self, vhost: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))

    @contextmanager
    def vhost(self) -> Iterator[str]:
        """A fresh vhost for one test; deleted afterwards (only ever our own)."""
        if not self.can_make_vhosts:
            yield self.url
            return
        name = f"whistle-test-{uuid.uuid4().hex[:12]}"
        user = urlsplit(self.url).username or "guest"
        self._ctl("add_vhost", name)
        self._ctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        try:
            yield self.vhost_url(name)
        finally:
            self._ctl("delete_vhost", name)


@contextmanager
def rabbit() -> Iterator[Rabbit]:
    if url := os.environ.get("RABBITMQ_URL"):
        yield Rabbit(url)
    elif docker_answers():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3-management") as container:
            params = container.get_connection_params()
            yield Rabbit(f"amqp://guest:guest@{params.host}:{params.port}/", container)
    else:
        yield Rabbit(LOCAL_RABBITMQ_URL)


@contextmanager
def mongodb() -> Iterator[str]:
    if url := os.environ.get("MONGODB_URL"):
        yield url
    elif docker_answers():
        from testcontainers.mongodb import MongoDbContainer

        container = MongoDbContainer("mongo:7").with_command("--replSet rs0 --bind_ip_all")
        with container:
            container.exec(
                [
                    "mongosh",
                    "--quiet",
                    "--eval",
                    "rs.initiate({_id:'rs0',members:[{_id:0,host:'localhost:27017'}]})",
                ]
            )
            host = container.get_container_host_ip()
            port = container.get_exposed_port(27017)
            yield f"mongodb://{host}:{port}/?directConnection=true"
    else:
        with embedded_mongodb() as url:
            yield url


@contextmanager
def embedded_mongodb() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "mongo", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("ready "):
            raise RuntimeError(f"embedded MongoDB did not start: {line!r}")
        yield line.removeprefix("ready ")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
