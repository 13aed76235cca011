"""`whistle run`: the services and, when MONGODB_URL is unset, one embedded MongoDB per service.

Each service owns its database, so on the embedded stand-in each gets its own server process
and SQLite file (`<data>/<service>.sqlite`): the stand-in runs one transaction at a time per
store, and no service ever waits for another's. Each child's output lines are prefixed with
its name. Ctrl-C (or SIGTERM) stops the services first, then the databases, each given a few
seconds to drain before it is killed.
"""

import asyncio
import importlib
import json
import os
import signal
import sys
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from services.cli.registry import SERVICES
from shared.settings import WhistleSettings
from shared.store.embedded import EMBEDDED_WARNING

STOP_GRACE_S = 8.0


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.ready_line: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._pump = asyncio.create_task(self._relay_output())

    async def _relay_output(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        width = max(len(name) for name in [*SERVICES, *(mongo_name(n) for n in SERVICES)])
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("ready ") and not self.ready_line.done():
                self.ready_line.set_result(line.removeprefix("ready "))
            sys.stdout.write(f"{self.name:<{width}} | {line}\n")
            sys.stdout.flush()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self._pump is not None:
            with suppress(Exception):
                await asyncio.wait_for(self._pump, 1.0)


def mongo_name(service: str) -> str:
    return f"mongo-{service}"


def embedded_port(base_port: int, index: int) -> int:
    """Port of the index-th service's store: base, base+1, ...; 0 lets each pick a free one."""
    return 0 if base_port == 0 else base_port + index


async def start_embedded_stores(
    data_dir: Path, base_port: int, env: dict[str, str], children: list["Child"]
) -> dict[str, str]:
    """One embedded server per service, started together; service name -> MONGODB_URL."""
    stores: dict[str, Child] = {}
    for index, name in enumerate(SERVICES):
        path = data_dir / f"{name}.sqlite"
        argv = [sys.executable, "-m", "services.cli", "mongo"]
        argv += ["--port", str(embedded_port(base_port, index)), "--path", str(path)]
        child = Child(mongo_name(name), argv, env)
        children.append(child)
        await child.start()
        stores[name] = child
    urls = {}
    for name, child in stores.items():
        urls[name] = await asyncio.wait_for(child.ready_line, 60)
        path = data_dir / f"{name}.sqlite"
        say(f"MongoDB for {name}: embedded stand-in at {urls[name]}, data in {path}")
    return urls


STORES_FILE = "stores.json"


def write_store_urls(data_dir: Path, urls: dict[str, str]) -> None:
    """Where each running service's embedded store listens, for the CLI run beside
    `whistle run` (`whistle account create` must reach the console's store, not another's)."""
    (data_dir / STORES_FILE).write_text(json.dumps(urls, indent=2) + "\n")


def embedded_store_url(service: str, data_dir: Path = Path("var")) -> str | None:
    """The running `whistle run`'s embedded store of `service`, if one is running here."""
    try:
        urls = json.loads((data_dir / STORES_FILE).read_text())
    except (OSError, ValueError):
        return None
    url = urls.get(service) if isinstance(urls, dict) else None
    return url if isinstance(url, str) else None


def say(message: str) -> None:
    print(f"whistle | {message}", flush=True)


def redacted(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def service_addresses() -> dict[str, str]:
    """Where each service will listen, read from its own settings (env included)."""
    addresses = {}
    for name, entry in SERVICES.items():
        settings = importlib.import_module(entry.module).load_settings()
        addresses[name] = f"http://{settings.host}:{settings.port}"
    return addresses


async def announce_ready(addresses: dict[str, str], patience_s: float = 60.0) -> None:
    """Say once when every service answers /readyz, or which ones still do not."""
    waiting = dict(addresses)
    deadline = asyncio.get_running_loop().time() + patience_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while waiting:
            for name, address in list(waiting.items()):
                with suppress(httpx.HTTPError):
                    if (await client.get(f"{address}/readyz")).status_code == 200:
                        del waiting[name]
            if not waiting:
                break
            if asyncio.get_running_loop().time() > deadline:
                say(f"not ready yet: {', '.join(waiting)} (see their lines above)")
                return
            await asyncio.sleep(0.25)
    say("ready: every service answers /readyz")


async def announce_first_admin(mongodb_url: str | None) -> None:
    """On a console store with no admin, make `admin` and print its password, this once."""
    from services.console.adapters.store import ensure_indexes
    from services.console.config import ConsoleSettings
    from services.console.handlers.commands import ensure_admin
    from shared.clock import utcnow
    from shared.store.mongo import make_client

    settings = ConsoleSettings()
    client = make_client(mongodb_url or settings.mongodb_url, app_name="whistle-run")
    try:
        db = client[settings.database_name("console")]
        await ensure_indexes(db)
        password = await ensure_admin(db, utcnow())
    except Exception as error:  # the console will say more when it starts; do not stop here
        say(f"console: could not check for an admin account ({type(error).__name__})")
        return
    finally:
        await client.close()
    if password is not None:
        say(f"console: created the first admin account: login 'admin', password '{password}'")
        say("console: this password is shown once; sign in and keep it safe")
    say(f"console: open {settings.public_url}")


def environment_lines(settings: WhistleSettings) -> list[str]:
    """What `whistle run` says about the environment it runs the services in."""
    if settings.is_production:
        return [
            "environment: production (WHISTLE_ENV): real secrets required, "
            "webhooks reach public addresses only"
        ]
    return [
        "environment: development (WHISTLE_ENV; production is the default elsewhere): "
        "the development secrets are accepted, tokens from 'whistle token' work",
        "webhooks may reach this machine's loopback (127.0.0.1, ::1) to try them out; "
        "private and link-local addresses are refused",
    ]


async def run_all(data_dir: Path, embedded_base_port: int) -> int:
    # `whistle run` is the way to try Whistle on one machine: development unless told otherwise.
    os.environ.setdefault("WHISTLE_ENV", "development")
    settings = WhistleSettings()
    env = dict(os.environ)
    children: list[Child] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    addresses = service_addresses()
    for line in environment_lines(settings):
        say(line)
    say(f"broker: {redacted(settings.rabbitmq_url)} (set RABBITMQ_URL to change)")
    python = sys.executable
    try:
        store_urls: dict[str, str] = {}
        if "MONGODB_URL" not in os.environ:
            say(f"MongoDB: starting one embedded stand-in per service, data in {data_dir}/")
            say(f"WARNING: {EMBEDDED_WARNING}")
            store_urls = await start_embedded_stores(data_dir, embedded_base_port, env, children)
            write_store_urls(data_dir, store_urls)
        else:
            say(f"MongoDB: {redacted(settings.mongodb_url)}")
        await announce_first_admin(store_urls.get("console") or env.get("MONGODB_URL"))
        for name in SERVICES:
            service_env = dict(env)
            if name in store_urls:
                service_env["MONGODB_URL"] = store_urls[name]
            child = Child(name, [python, "-m", "services.cli", "serve", name], service_env)
            children.append(child)
            await child.start()
        listing = ", ".join(f"{name} {address}" for name, address in addresses.items())
        say(f"up: {listing} (Ctrl-C stops)")
        waiters = [asyncio.create_task(c.process.wait()) for c in children if c.process]
        stopper = asyncio.create_task(stop.wait())
        announcer = asyncio.create_task(announce_ready(addresses))
        done, _ = await asyncio.wait([*waiters, stopper], return_when=asyncio.FIRST_COMPLETED)
        announcer.cancel()
        code = 0
        if stopper not in done:
            say("a process exited; stopping the rest")
            code = 1
        stopper.cancel()
        return code
    finally:
        say("stopping")
        (data_dir / STORES_FILE).unlink(missing_ok=True)
        stores = {mongo_name(name) for name in SERVICES}
        await asyncio.gather(*(c.stop() for c in children if c.name not in stores))
        await asyncio.gather(*(c.stop() for c in children if c.name in stores))
        say("stopped")
