"""The README's walk-through and escalation, run as written against the four real services.

The bash block under "## A walk-through" is taken from README.md, its `localhost:800N`
addresses pointed at this test's service processes, and run with `set -euo pipefail`: if the
README's commands stop matching the API, this fails.
"""

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.cli.registry import SERVICES
from services.notify.adapters.webhook import sign
from shared.settings import DEV_JWT_SECRET
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def section_blocks(markdown: str, heading: str, language: str = "bash") -> list[str]:
    """The fenced code blocks of one `## ` section."""
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


# Between the README's blocks a person takes seconds; the script takes milliseconds, so it
# waits for what a person would have found done by then (the events having travelled).
WAITS = [
    # units has heard of the demand before anyone claims it
    "curl -sf 'localhost:8002/v1/open-demands?community_id=c-north' "
    '-H "Authorization: Bearer $ADMIN" | jq -e --arg d "$DEMAND" \'any(.items[]; .id == $d)\'',
    "",
    # dispatch has heard of the claim before the secretary completes the demand
    'curl -sf "localhost:8001/v1/demands/$DEMAND" -H "Authorization: Bearer $SECRETARY" '
    "| jq -e '.filled >= 1'",
    # audit has recorded the demand's completion before the auditor reads
    'curl -sf "localhost:8004/v1/events?subject=$DEMAND&type=demand.completed" '
    "-H \"Authorization: Bearer $AUDITOR\" | jq -e '.items | length == 1'",
    "",
    # audit has recorded the erasure before the auditor reads the volunteer's history
    'curl -sf "localhost:8004/v1/events?subject=$VOLUNTEER&type=volunteer.erased" '
    "-H \"Authorization: Bearer $AUDITOR\" | jq -e '.items | length == 1'",
]
WAIT_FOR = """
wait_for() {
  local deadline=$((SECONDS + 90))
  until eval "$1" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "timed out waiting for: $1" >&2; return 1; fi
    sleep 0.1
  done
}
"""


ESCALATION_STEP_S = 5


def escalation_script(readme: str) -> str:
    """The escalation section's demand, on a clock of seconds instead of minutes."""
    start, demand = section_blocks(readme, "Watching a demand escalate")
    assert start.strip() == "WHISTLE_ESCALATION_STEP_S=60 make run"
    fast = {
        "date -u -d '+1 min'": "date -u -d '+3 sec'",
        "sleep 70": "wait_for "
        + shlex.quote(
            'curl -sf "localhost:8001/v1/demands/$LATE" -H "Authorization: Bearer $SECRETARY" '
            "| jq -e '.level == \"street\"'"
        ),
        "sleep 60": "wait_for "
        + shlex.quote(
            'curl -sf "localhost:8004/v1/events?subject=$LATE&type=demand.escalated" '
            "-H \"Authorization: Bearer $AUDITOR\" | jq -e '.items | length == 2'"
        ),
    }
    for slow, quick in fast.items():
        assert slow in demand, slow
        demand = demand.replace(slow, quick)
    return demand


def test_the_readme_walkthrough_blocks_are_found() -> None:
    blocks = section_blocks(README.read_text(), "A walk-through")
    assert len(blocks) == len(WAITS) + 1
    assert "whistle token --role secretary --community c-north --sub li" in blocks[0]


def test_the_readme_walkthrough_runs_against_the_services(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the walk-through needs {', '.join(missing)}")
    # A short escalation step, so the ladder's second rung comes within the test.
    extra = {"dispatch": {"WHISTLE_ESCALATION_STEP_S": str(ESCALATION_STEP_S)}}
    # Started together, then awaited: the four start-ups overlap.
    services = {name: start_service(name, wait=False, **extra.get(name, {})) for name in SERVICES}
    for service in services.values():
        service.wait_ready()
    readme = README.read_text()
    blocks = section_blocks(readme, "A walk-through")
    steps = [blocks[0]]
    for wait, block in zip(WAITS, blocks[1:], strict=True):
        if wait:
            steps.append(f"wait_for {shlex.quote(wait)}\n")
        steps.append(block)
    steps.append(escalation_script(readme))
    script = "set -euo pipefail\n" + WAIT_FOR + "".join(steps)
    for name, entry in SERVICES.items():
        script = script.replace(f"localhost:{entry.default_port}", services[name].url)
    path = tmp_path / "walkthrough.sh"
    path.write_text(script)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WHISTLE_")}
    env["WHISTLE_JWT_SECRET"] = DEV_JWT_SECRET
    env["WHISTLE_AUDIT_URL"] = services["audit"].url  # what `whistle replay/verify` read
    result = subprocess.run(
        ["bash", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    lines = output.splitlines()
    assert '"id":"c-north"' in lines[0]
    demand = re.search(r"^demand (\S+)$", output, flags=re.MULTILINE)
    assert demand
    assert f"again {demand[1]}" in lines  # the idempotent retry
    assert len(re.findall(r"^\d+ demand.published by ", output, flags=re.MULTILINE)) == 1
    assert re.search(r"^claim \S+$", output, flags=re.MULTILINE)
    assert '{"type":"https://whistle.dev/problems/already-claimed","status":409}' in lines
    assert '"status":"checked_in"' in output
    assert '"status":"completed"' in output
    assert '{"status":"completed","filled":1,"level":"community"}' in output
    for event_type in (
        "demand.published",
        "claim.accepted",
        "claim.checked_in",
        "claim.completed",
        "demand.completed",
    ):
        assert re.search(rf"^\d+ {re.escape(event_type)} by \S+$", output, re.MULTILINE), output
        assert re.search(rf"^\+[\d.]+s {re.escape(event_type)}$", output, re.MULTILINE), output
    assert any(line.startswith('{"ok":true,') for line in lines), output
    assert re.search(r"^\d+ demand.completed$", output, re.MULTILINE), output  # whistle replay
    # `whistle verify`: every partition's chain, and the Merkle root over their heads.
    assert any(
        re.fullmatch(r"ok: \d+ events in \d+ partitions, root [0-9a-f]{64}", line) for line in lines
    ), output
    # Correcting and erasing Wang: every commented output of that section, as printed.
    readme_text = README.read_text()
    erasure = readme_text.split("### Correcting and erasing a person", 1)[1].split("\n## ", 1)[0]
    for expected in re.findall(r"^# (.+)$", erasure, flags=re.MULTILINE):
        assert expected in lines, (expected, output)
    # The escalation section, its commented outputs included.
    assert lines[-3:] == [
        '{"status":"open","level":"street"}',
        '{"from_level":"community","to_level":"street","target":"s-xinjiekou"}',
        '{"from_level":"street","to_level":"district","target":"d-xicheng"}',
    ]
    for expected in lines[-3:]:
        assert f"# {expected}" in README.read_text()


def _readme_receiver() -> dict[str, Any]:
    [block] = section_blocks(README.read_text(), "Receiving webhooks", "python")
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}
    # Our own README's code, run as a reader would copy it.
    exec(compile(block, "README.md", "exec"), namespace)
    return namespace


def test_the_readme_receiver_takes_genuine_fresh_new_deliveries_only() -> None:
    accept = _readme_receiver()["accept"]
    secret, body, now = "whsec_readme", b'{"id":"ntf_1"}', 1_800_000_000
    headers = {
        "X-Whistle-Signature": sign(secret, body, now),
        "X-Whistle-Delivery": "ntf_1:webhook",
    }
    seen: dict[str, float] = {}
    assert accept(secret, headers, body, seen, now=now + 10)
    assert not accept(secret, headers, body, seen, now=now + 20)  # the same delivery again
    assert not accept(secret, headers, body + b" ", {}, now=now)  # a body changed on the way
    assert not accept("whsec_other", headers, body, {}, now=now)  # another receiver's secret
    assert not accept(secret, headers, body, {}, now=now + 301)  # older than 5 minutes
    assert accept(secret, headers, body, {}, now=now + 299)
    assert not accept(secret, {"X-Whistle-Delivery": "x"}, body, {}, now=now)  # unsigned
