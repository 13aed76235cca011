"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here).

The compose file is loaded as YAML and its `${VAR...}` references are interpolated the way
compose does, so the environment a container would get can be fed to the real settings classes.
"""

import fnmatch
import importlib
import os
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from services.cli.registry import SERVICES
from shared.settings import DEV_JWT_SECRET

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INFRA = {"rabbitmq", "mongodb"}
SECRETS = {"WHISTLE_JWT_SECRET"}
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


class MissingVariable(LookupError):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (unset or empty)."""

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op == ":?":
            raise MissingVariable(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return _REFERENCE.sub(resolve, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def container_env(service: dict[str, Any], host_env: dict[str, str]) -> dict[str, str]:
    """What the container's environment would be; a value-less entry passes the host's through."""
    env: dict[str, str] = {}
    for name, value in service["environment"].items():
        if value is None:
            if name in host_env:
                env[name] = host_env[name]
        else:
            env[name] = interpolate(str(value), host_env)
    return env


def test_compose_runs_the_infrastructure_and_every_registered_service(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == INFRA | set(SERVICES)


def test_every_service_runs_from_one_image_with_its_own_command_and_port(
    services: dict[str, dict[str, Any]],
) -> None:
    images = {services[name]["image"] for name in SERVICES}
    assert len(images) == 1
    for name, entry in SERVICES.items():
        service = services[name]
        assert service["build"] == "."
        assert service["command"] == ["serve", name]
        port = entry.default_port
        assert f"{port}:{port}" in service["ports"]
        assert service["environment"][f"WHISTLE_{name.upper()}_PORT"] == str(port)
        assert service["restart"] in {"always", "unless-stopped"}


def test_services_start_only_after_healthy_infrastructure(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on == {
            "rabbitmq": {"condition": "service_healthy"},
            "mongodb": {"condition": "service_healthy"},
        }


def test_every_service_has_a_readiness_healthcheck_on_its_port(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, entry in SERVICES.items():
        check = services[name]["healthcheck"]
        assert check["test"] == [
            "CMD",
            "python",
            "/app/deploy/healthcheck.py",
            str(entry.default_port),
        ]
        assert check["retries"] >= 1


def test_rabbitmq_is_the_management_image_with_a_ping_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["image"] == "rabbitmq:3-management"
    assert rabbitmq["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    # The node name follows the hostname, and the data directory follows the node name.
    assert rabbitmq["hostname"] == "rabbitmq"


def test_mongodb_is_a_one_node_replica_set_initialised_by_its_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    mongodb = services["mongodb"]
    assert mongodb["image"] == "mongo:7"
    command = mongodb["command"]
    assert command[0] == "mongod"
    assert "--bind_ip_all" in command
    replica_set = command[command.index("--replSet") + 1]
    test = mongodb["healthcheck"]["test"]
    assert test[:2] == ["CMD", "mongosh"]
    script = test[-1]
    assert "rs.status()" in script
    assert f'rs.initiate({{_id: "{replica_set}"' in script
    # The member's address is the one the services reach it by on the compose network.
    assert 'host: "mongodb:27017"' in script
    # Healthy only once writes are possible: a freshly initiated set has no primary yet.
    assert "isWritablePrimary" in script
    for name in SERVICES:
        url = urlsplit(services[name]["environment"]["MONGODB_URL"])
        assert url.hostname == "mongodb"
        assert parse_qs(url.query)["replicaSet"] == [replica_set]


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name in INFRA:
        mounts = compose["services"][name]["volumes"]
        sources = {mount.split(":")[0] for mount in mounts}
        assert sources <= declared, f"{name} mounts {sources - declared} not declared"
    assert {mount.split(":")[1] for mount in compose["services"]["mongodb"]["volumes"]} >= {
        "/data/db",
        "/data/configdb",
    }
    assert any(
        mount.endswith(":/var/lib/rabbitmq") for mount in compose["services"]["rabbitmq"]["volumes"]
    )


def test_secrets_must_come_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    host: dict[str, str] = {}  # the JWT secret is missing
    for name in SERVICES:
        for secret in SECRETS:
            assert str(services[name]["environment"][secret]).startswith(f"${{{secret}:?")
        with pytest.raises(MissingVariable, match="WHISTLE_JWT_SECRET"):
            container_env(services[name], host)
        # Webhook secrets are per receiver now: no shared one is asked for.
        assert "WHISTLE_WEBHOOK_SECRET" not in services[name]["environment"]


def test_the_container_environment_is_a_valid_production_configuration(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.startswith("WHISTLE_") or variable in {"RABBITMQ_URL", "MONGODB_URL"}:
            monkeypatch.delenv(variable)
    host = {
        "WHISTLE_JWT_SECRET": "j" * 40,
        "WHISTLE_AUDIT_SIGNING_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "WHISTLE_SMTP_URL": "smtp://whistle:pw@mail.example.org:587",
    }
    for name, entry in SERVICES.items():
        env = container_env(services[name], host)
        assert env["WHISTLE_HOST"] == "0.0.0.0"
        assert urlsplit(env["RABBITMQ_URL"]).hostname == "rabbitmq"
        bootstrap = _bootstrap_module(entry.module)
        with monkeypatch.context() as patch:
            for variable, value in env.items():
                patch.setenv(variable, value)
            settings = bootstrap.load_settings()
        assert settings.env == "production"
        assert settings.jwt_secret.get_secret_value() == host["WHISTLE_JWT_SECRET"]
        assert settings.jwt_secret.get_secret_value() != DEV_JWT_SECRET
        assert settings.port == entry.default_port
        assert settings.host == "0.0.0.0"
        assert settings.rabbitmq_url == env["RABBITMQ_URL"]
        assert settings.mongodb_url == env["MONGODB_URL"]


def test_the_console_reaches_the_four_services_by_name_and_serves_secure_cookies(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.startswith("WHISTLE_") or variable in {"RABBITMQ_URL", "MONGODB_URL"}:
            monkeypatch.delenv(variable)
    host = {"WHISTLE_JWT_SECRET": "j" * 40, "WHISTLE_WEBHOOK_SECRET": "w" * 40}
    env = container_env(services["console"], host)
    with monkeypatch.context() as patch:
        for variable, value in env.items():
            patch.setenv(variable, value)
        settings = _bootstrap_module(SERVICES["console"].module).load_settings()
    for name in ("dispatch", "units", "notify", "audit"):
        url = urlsplit(getattr(settings, f"{name}_url"))
        assert (url.hostname, url.port) == (name, SERVICES[name].default_port)
    assert settings.public_url == "http://localhost:8000"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.secure_cookies  # production: cookies over HTTPS only
    # The console needs the database, not the broker, but starts after both are healthy.
    assert set(services["console"]["depends_on"]) >= {"mongodb"}


def test_smtp_reaches_notify_only_when_the_host_sets_it(
    services: dict[str, dict[str, Any]],
) -> None:
    host = {"WHISTLE_JWT_SECRET": "j"}
    assert "WHISTLE_SMTP_URL" not in container_env(services["notify"], host)
    smtp = "smtp://mail.example.org:587"
    with_smtp = container_env(services["notify"], {**host, "WHISTLE_SMTP_URL": smtp})
    assert with_smtp["WHISTLE_SMTP_URL"] == smtp


def _bootstrap_module(bootstrap: str) -> Any:
    try:
        return importlib.import_module(bootstrap)
    except ModuleNotFoundError as missing:
        pytest.fail(f"{bootstrap} cannot be imported: {missing}")


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def test_dockerfile_builds_on_python_3_13_slim() -> None:
    bases = [args.split()[0] for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert bases
    assert all(base == "python:3.13-slim" for base in bases)


def test_dockerfile_installs_from_the_lock_file_without_dev_dependencies() -> None:
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    syncs = [run for run in runs if "uv sync" in run]
    assert syncs
    for sync in syncs:
        assert "--locked" in sync
        assert "--no-dev" in sync
    assert not any(re.search(r"\bpip install\b", run) for run in runs)


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users
    assert users[-1] not in {"root", "0", "0:0"}


def test_dockerfile_exposes_every_service_port_and_enters_through_whistle() -> None:
    instructions = dockerfile_instructions()
    exposed = {
        int(port) for keyword, args in instructions if keyword == "EXPOSE" for port in args.split()
    }
    assert exposed == {entry.default_port for entry in SERVICES.values()}
    entrypoints = [args for keyword, args in instructions if keyword == "ENTRYPOINT"]
    assert entrypoints == ['["whistle"]']
    envs = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "WHISTLE_HOST=0.0.0.0" in envs
    # Listening on every interface, a bare `docker run` must refuse the public dev secrets.
    assert "WHISTLE_ENV=production" in envs


def test_dockerfile_healthcheck_uses_python_and_the_script_it_copies() -> None:
    instructions = dockerfile_instructions()
    healthchecks = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "curl" not in healthchecks[0]
    assert 'CMD ["python", "/app/deploy/healthcheck.py"]' in healthchecks[0]
    copies = [args for keyword, args in instructions if keyword == "COPY"]
    assert any("deploy/healthcheck.py /app/deploy/healthcheck.py" in copy for copy in copies)
    assert (ROOT / "deploy" / "healthcheck.py").is_file()


def test_dockerignore_keeps_everything_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = set()
    for keyword, args in dockerfile_instructions():
        if keyword != "COPY":
            continue
        if "--from=" in args:
            continue  # from another stage or image, not from the build context
        words = [word for word in shlex.split(args) if not word.startswith("--")]
        sources.update(words[:-1])
    sources.update({"uv.lock", "pyproject.toml"})  # bind-mounted for the dependency layer
    assert {"shared", "services", "README.md", "deploy/healthcheck.py"} <= sources
    for source in sources:
        for pattern in patterns:
            assert not fnmatch.fnmatch(source, pattern), f"{pattern} hides {source}"
            assert not source.startswith(pattern.rstrip("/") + "/"), f"{pattern} hides {source}"
