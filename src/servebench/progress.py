"""Where a long run is: step n of N, time elapsed and an estimate of the time left.

The steps are known before the run starts (the plan lists them); how long each takes is not.
The estimate therefore learns from the steps already timed: a step is predicted by the mean
duration of earlier steps with the same kind and key (the same unit again: its own
speed), else of the same kind (any unit, any ceiling), else by the kind's
prior (a duration the plan fixes, such as the soak's), else not at all: until every kind
still to come can be predicted the line says "estimating" rather than guess.

Pure arithmetic on an injected clock, so that it is tested without waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One step of a run. Steps of one kind take comparable time; the same key, the same."""

    kind: str
    key: str = ""


def duration(seconds: float) -> str:
    """Elapsed time, to the second: 45s, 4m10s, 1h02m."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def approximate(seconds: float) -> str:
    """An estimate, no finer than it can be: ~40s, ~7m, ~1h05m (minutes rounded up, so that a
    run never shows ~0m left while it still has work to do)."""
    if seconds < 60:
        return f"~{max(0, math.ceil(seconds / 10) * 10)}s"
    whole = math.ceil(seconds / 60)
    if whole < 60:
        return f"~{whole}m"
    return f"~{whole // 60}h{whole % 60:02d}m"


def minutes(seconds: float) -> str:
    """An estimate in words: under a minute, about 1 minute, about 35 minutes."""
    if seconds < 60:
        return "under a minute"
    count = round(seconds / 60)
    return f"about {count} minute{'s' if count != 1 else ''}"


class Progress:
    """Counts the steps of a planned run and estimates the time left.

    `step(label)` starts the next step (ending the one before) and returns its line,
    `finish()` ends the last one; `eta()` is the estimate in seconds (None until it can be made).
    """

    def __init__(
        self,
        steps: Sequence[Step],
        prior_s: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.steps = list(steps)
        self.prior_s = dict(prior_s or {})
        self.clock = clock
        self.started = clock()
        self.timed: list[float] = []  # durations of the steps ended so far, in order
        self.current_started: float | None = None  # start of the step now running

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def position(self) -> int:
        """Steps started so far (the running one included)."""
        return len(self.timed) + (self.current_started is not None)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def step(self, label: str) -> str:
        """End the running step, start the next one; its line, e.g.
        `[12/33 · 4m10s elapsed · ~7m left] point seed c=50: rounds of bursts`."""
        self.end_step()
        if self.position >= self.total:
            raise RuntimeError(f"all {self.total} planned steps were already started ({label})")
        self.current_started = self.clock()
        return f"[{self.position}/{self.total} · {self.status()}] {label}"

    def end_step(self) -> None:
        """End the running step, if any (step() does it; call it to time a step before a pause)."""
        if self.current_started is not None:
            self.timed.append(self.clock() - self.current_started)
            self.current_started = None

    def finish(self) -> str:
        """End the last step; the closing line's bracket, e.g. `[33/33 · 20m05s elapsed]`."""
        self.end_step()
        return f"[{len(self.timed)}/{self.total} · {duration(self.elapsed())} elapsed]"

    def status(self) -> str:
        left = self.eta()
        estimate = "estimating" if left is None else f"{approximate(left)} left"
        return f"{duration(self.elapsed())} elapsed · {estimate}"

    def predict(self, index: int) -> float | None:
        """Expected duration of step `index` from the steps timed so far, or None."""
        wanted = self.steps[index]
        done = list(zip(self.steps, self.timed, strict=False))
        same_key = [t for s, t in done if wanted.key and s == wanted]
        same_kind = [t for s, t in done if s.kind == wanted.kind]
        for times in (same_key, same_kind):
            if times:
                return sum(times) / len(times)
        return self.prior_s.get(wanted.kind)

    def eta(self) -> float | None:
        """Seconds left: what the running step is expected to still take, plus every step not
        started yet; None while some step to come cannot be predicted."""
        left = 0.0
        first_waiting = self.position
        if self.current_started is not None:
            expected = self.predict(first_waiting - 1)
            if expected is None:
                return None
            left += max(0.0, expected - (self.clock() - self.current_started))
        for index in range(first_waiting, self.total):
            expected = self.predict(index)
            if expected is None:
                return None
            left += expected
        return left

    def forecast(self) -> str:
        """One sentence for the log once the estimate exists, e.g. once every unit started."""
        left = self.eta()
        if left is None:
            return f"{self.total - self.position} steps left; no estimate yet"
        return f"estimate: {minutes(left)} left ({minutes(self.elapsed() + left)} in all)"
