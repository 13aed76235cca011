"""No event type is spelled out in services/ or shared/broker/: the catalogue
(`shared/events/catalogue.py`) is the one place a type's name is written; everything else
names the model (`DemandEscalated`, `DemandEscalated.TYPE`).

Python sources only: the console's templates key their translated labels by type (Babel
extracts literal strings), which is presentation, not wiring."""

import re
from pathlib import Path

import pytest

from shared.events.catalogue import CATALOGUE

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (ROOT / "services", ROOT / "shared" / "broker")
SPELLED = re.compile("|".join(rf"[\"']{re.escape(name)}[\"']" for name in CATALOGUE))


def _spelled_out(roots: tuple[Path, ...]) -> list[str]:
    return [
        f"{path.relative_to(root.parent)}: {match.group()}"
        for root in roots
        for path in sorted(root.rglob("*.py"))
        for match in SPELLED.finditer(path.read_text(encoding="utf-8"))
    ]


def test_no_event_type_is_spelled_out_outside_the_catalogue() -> None:
    assert _spelled_out(SCANNED) == []


def test_the_check_finds_a_type_spelled_out(tmp_path: Path) -> None:
    (tmp_path / "handlers.py").write_text('HANDLERS = {"demand.cancelled": on_cancelled}\n')
    (tmp_path / "fine.py").write_text("HANDLERS = {DemandCancelled: on_cancelled}\n")
    found = _spelled_out((tmp_path,))
    assert [line.rsplit(": ", 1)[1] for line in found] == ['"demand.cancelled"']
