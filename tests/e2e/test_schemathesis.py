"""schemathesis (property-based, from each service's own OpenAPI) against the four running
services, with a valid token of every role: no 5xx and no failed check.

Every check runs (`--checks all`) except `positive_data_acceptance`, which expects every
schema-valid request to succeed. Whistle rightly refuses some requests that no JSON Schema
can describe as invalid: `ends_at` before `starts_at` or a `fill_by` already past (rules
across fields and the clock), a `cursor` the service never issued, a demand id that does not
exist. Those answer 4xx problems, which every other check still inspects.

Bounded: the admin (who may call everything) gets the coverage and fuzzing phases with two
examples per operation; the other roles a short fuzzing pass; a service's runs side by side.
A read route's coverage phase sends only invalid values (schemathesis.toml beside this file
says why): that took the admin's cases on audit, all reads, from 380 to 211.
"""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli.registry import APIS
from tests.support.auth import make_token
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
TOKENS = {
    "admin": make_token("admin", "st-admin"),
    "secretary": make_token("secretary", "st-secretary", community="c-st"),
    "unit": make_token("unit", "st-unit", unit="u-st"),
    "volunteer": make_token("volunteer", "st-volunteer", volunteer="v-st"),
    "auditor": make_token("auditor", "st-auditor"),
}
EXPLAINED = ["positive_data_acceptance"]
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _run(url: str, role: str, cwd: Path) -> subprocess.Popen[str]:
    full = role == "admin"
    argv = [
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXPLAINED),
        "--max-examples",
        "2",
        "--phases",
        "examples,coverage,fuzzing" if full else "examples,fuzzing",
        "--generation-deterministic",
        "--request-timeout",
        "10",
        "--header",
        f"Authorization: Bearer {TOKENS[role]}",
        "--no-color",
    ]
    return subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.parametrize("service", list(APIS))
def test_schemathesis_finds_no_failure_for_any_role(
    service: str, start_module_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    # Patient start-up: this runs beside the rest of the suite on a busy machine.
    # Registrations naming a community nobody registered wait for it to arrive before their
    # 422: 5 s each by default, which made most of the units run's four minutes.
    quick = {"WHISTLE_UNITS_COMMUNITY_ARRIVAL_S": "0.2"} if service == "units" else {}
    process = start_module_service(service, wait=False, **quick).wait_ready(120)
    runs = {role: _run(process.url, role, tmp_path) for role in TOKENS}
    failed = {}
    for role, run in runs.items():
        output, _ = run.communicate(timeout=600)
        if run.returncode != 0:
            failed[role] = output[-6000:]
        else:
            assert "passed" in output, output
    assert not failed, "\n\n".join(f"--- as {role}:\n{text}" for role, text in failed.items())
