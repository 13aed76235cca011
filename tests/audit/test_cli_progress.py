"""`whistle replay`'s progress line: drawn on a terminal only, never mixed into the NDJSON."""

import io

import pytest

from services.cli.audit_commands import Progress

pytestmark = pytest.mark.unit


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_up_to_the_head() -> None:
    screen = Terminal()
    progress = Progress(screen, after=0, head=400)
    for seq in range(1, 401):
        progress.advance(seq)
    progress.close()
    drawn = screen.getvalue()
    assert "seq 200 of 400, 200 events" in drawn
    assert f"[{'#' * 30}] seq 400 of 400, 400 events" in drawn
    assert drawn.endswith("400 events replayed" + " " * 40 + "\n")


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    piped = io.StringIO()
    progress = Progress(piped, after=0, head=10)
    for seq in range(1, 11):
        progress.advance(seq)
    progress.close()
    assert piped.getvalue() == ""
    assert progress.count == 10
