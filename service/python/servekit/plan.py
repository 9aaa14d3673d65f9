"""The scheduler's choice (service/CONTRACT.md "Batched services", "Which requests run next"):
from the requests waiting (token lengths, how long each has waited), the run to make
next. Pure, so the policy is tested without a model; the Rust twin is
service/rust/rust-native-batched/src/plan.rs, and both pass the golden cases of
service/batching_cases.json.

Shortest first, because a batch is padded to its longest row and a short request should not
wait behind a long one; with aging, because shortest first alone would starve a long text
under steady load: once a request has waited more than `max_wait_ms`, the longest-waiting one
is run next, with the waiting texts nearest its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one run may hold (the batching flags of the same names)."""

    max_batch_size: int
    max_batch_tokens: int
    max_padding: float
    max_wait_ms: int


#: Only equal lengths share a run, however many: copies of one text in exactly one run (the
#: in-process batch path times b copies of one text as one run of b rows).
EQUAL_LENGTHS = Limits(
    max_batch_size=2**62, max_batch_tokens=2**62, max_padding=0.0, max_wait_ms=2**40
)


def fits(rows: int, longest: int, tokens: int, limits: Limits) -> bool:
    """Whether `rows` rows holding `tokens` real tokens, padded to `longest`, respect `limits`."""
    positions = rows * longest
    if rows > limits.max_batch_size or positions > limits.max_batch_tokens:
        return False
    # The contract's formula, literally: the Rust service evaluates the same f64 expression,
    # so both choose identically even at the boundary.
    return positions == 0 or 1 - tokens / positions <= limits.max_padding


def next_run(lengths: Sequence[int], waited_us: Sequence[int], limits: Limits) -> list[int]:
    """Indices of the waiting requests (`lengths[i]` tokens, waited `waited_us[i]` µs; any
    order) to run next, in row order (shortest first, ties by index). Empty for no requests.

    Not aged (no request has waited more than `max_wait_ms`): walking the requests by (length,
    index), the shortest starts the run and each next one joins while the run stays
    within `limits` (it is the longest row so far); the first that does not fit ends it.
    Aged: the request that has waited longest (ties: lowest index) anchors the run; the others
    are tried nearest its length first (ties: the shorter, then the lower index), each joining
    if the run stays within `limits` (one that does not is passed over). A run of one is always
    allowed.
    """
    if not lengths:
        return []
    bound_us = limits.max_wait_ms * 1000
    oldest = min(range(len(lengths)), key=lambda i: (-waited_us[i], i))
    if waited_us[oldest] > bound_us:
        anchor = lengths[oldest]
        # Nearest lengths first (ties: the shorter, then arrival), each that keeps the run
        # within the limits: the aged request gets as full a run as the queue allows.
        mates = sorted(
            (i for i in range(len(lengths)) if i != oldest),
            key=lambda i: (abs(lengths[i] - anchor), lengths[i], i),
        )
        chosen, tokens, longest = [oldest], anchor, anchor
        for index in mates:
            if len(chosen) == limits.max_batch_size:
                break
            wider = max(longest, lengths[index])
            if fits(len(chosen) + 1, wider, tokens + lengths[index], limits):
                chosen.append(index)
                tokens += lengths[index]
                longest = wider
    else:
        walk = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        chosen, tokens = [walk[0]], lengths[walk[0]]
        for index in walk[1:]:
            # Sorted ascending, so the item joining is the run's longest row.
            if not fits(len(chosen) + 1, lengths[index], tokens + lengths[index], limits):
                break
            chosen.append(index)
            tokens += lengths[index]
    return sorted(chosen, key=lambda i: (lengths[i], i))


def plan_all(
    lengths: Sequence[int], limits: Limits, waited_us: Sequence[int] | None = None
) -> list[list[int]]:
    """Every run, in order, that `next_run` gives for these requests if none
    arrives and no time passes meanwhile (the waits stay as given, zero by default): how a
    batch known at once (the in-process batch path) is cut, and the golden cases' form."""
    waits = list(waited_us) if waited_us is not None else [0] * len(lengths)
    left = list(range(len(lengths)))
    groups: list[list[int]] = []
    while left:
        chosen = next_run([lengths[i] for i in left], [waits[i] for i in left], limits)
        groups.append([left[k] for k in chosen])
        taken = set(chosen)
        left = [index for k, index in enumerate(left) if k not in taken]
    return groups
