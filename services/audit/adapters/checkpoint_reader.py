"""The last line of the checkpoint file, read from its end (the file only grows: reading it
whole to show the newest line would cost more every minute)."""

import os
from pathlib import Path

CHUNK = 8192
# A line holds a few hashes per partition; a longer tail than this is not a checkpoint file.
MAX_LINE = 4 * 1024 * 1024


def last_line(path: Path) -> str | None:
    """The file's last non-empty line; None when the file is missing or empty."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        end = os.lseek(descriptor, 0, os.SEEK_END)
        tail = b""
        position = end
        while position > 0 and len(tail) <= MAX_LINE:
            step = min(CHUNK, position)
            position -= step
            os.lseek(descriptor, position, os.SEEK_SET)
            tail = os.read(descriptor, step) + tail
            lines = [line for line in tail.split(b"\n") if line.strip()]
            # A whole line is known once a newline precedes it (or the file's start does).
            if len(lines) > 1 or (lines and position == 0):
                return lines[-1].decode()
        lines = [line for line in tail.split(b"\n") if line.strip()]
        return lines[-1].decode() if lines and position == 0 else None
    finally:
        os.close(descriptor)
