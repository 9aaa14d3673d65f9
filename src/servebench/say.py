"""Progress lines on stdout, time-stamped: the pipeline shows a notebook's stdout on the
console as it comes, and keeps its stderr (library warnings, build output) in the run's logs."""

from __future__ import annotations

import sys
import time


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stdout, flush=True)


#: The width of a unit's name in a progress line: the longest service·variant of the
#: registry today ("rust-native-release·int8-static") and a space, so the columns line up.
UNIT_WIDTH = 32


def unit_column(name: str) -> str:
    """A unit's name padded to :data:`UNIT_WIDTH` (a longer one keeps a space after it)."""
    return f"{name:<{UNIT_WIDTH - 1}} "
