"""Progress lines on stderr, time-stamped (papermill logs them; CI shows them as they come)."""

from __future__ import annotations

import sys
import time


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
