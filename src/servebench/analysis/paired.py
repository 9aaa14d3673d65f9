"""Paired ratios from interleaved bursts: precision that survives a drifting machine.

A shared VM's speed drifts by tens of percent within an hour, so two services measured minutes
apart differ by the drift as well as by themselves, and repeating the measurement only spreads
the error. Interleaving pairs the measurements instead: a *round* runs every service once, in
short bursts, in an order drawn anew each round (:func:`round_orders`); each service's burst
is divided by the reference service's burst of the same round (:func:`round_ratios`). Both
bursts sampled the same minute of the machine, so a drift that slows the machine by a factor
slows both and cancels in their ratio; every other round runs the one before it in reverse, so
a drift *within* rounds favours neither of two services (it cancels over each pair of rounds).

The estimate of a ratio is the geometric mean of its per-round ratios, and its 95 % confidence
interval is Student's t on their logarithms (:func:`ratio_interval`):
``exp(mean ± t(0.975, n − 1) · sd / √n)``. Logarithms, because speed ratios are positive and
their noise multiplicative (a burst 10 % slow divides, it does not subtract); Student's t,
because a study stops after a handful of rounds, where a bootstrap interval is too narrow (it
can never be wider than the rounds' own range). A point is precise enough once every ratio's
interval is within ``target_pct`` of its estimate (:func:`converged`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

H = TypeVar("H", bound=Hashable)

#: Student's t quantile for a two-sided 95 % interval, by degrees of freedom (1..30); from 31
#: on the normal 1.96 is within 2 % of it.
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_975(dof: int) -> float:
    if dof < 1:
        raise ValueError("a t interval needs at least 2 rounds (1 degree of freedom)")
    return T_975[dof - 1] if dof <= len(T_975) else 1.96


@dataclass(frozen=True)
class RatioInterval:
    """A paired ratio: its estimate (geometric mean), 95 % interval and the rounds behind it."""

    estimate: float
    low: float
    high: float
    rounds: int

    @property
    def half_width_pct(self) -> float:
        """Half the interval's width relative to the estimate, in % (log scale: symmetric)."""
        if self.rounds < 2 or not (self.low > 0 and self.high > 0):
            return math.inf
        return (math.sqrt(self.high / self.low) - 1) * 100

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def ratio_interval(ratios: Iterable[float]) -> RatioInterval:
    """Geometric mean of per-round ratios with its 95 % Student-t interval on the log scale.

    One round gives the ratio with an infinitely wide interval; ratios that are not positive
    and finite (a failed burst) are refused."""
    values = np.asarray(list(ratios), dtype=float)
    if values.size == 0:
        raise ValueError("no paired ratio to summarise")
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(f"paired ratios must be positive and finite, got {values.tolist()}")
    logs = np.log(values)
    centre = float(logs.mean())
    if values.size == 1:
        return RatioInterval(math.exp(centre), 0.0, math.inf, 1)
    half = t_975(values.size - 1) * float(logs.std(ddof=1)) / math.sqrt(values.size)
    return RatioInterval(
        math.exp(centre), math.exp(centre - half), math.exp(centre + half), values.size
    )


def converged(intervals: Iterable[RatioInterval], target_pct: float) -> bool:
    """True when every ratio's interval is within `target_pct` of its estimate."""
    widths = [interval.half_width_pct for interval in intervals]
    return bool(widths) and max(widths) <= target_pct


def round_orders(units: Sequence[Hashable], rounds: int, seed: int) -> list[list[Hashable]]:
    """The order of each round, counterbalanced: a fresh seeded permutation of `units` for
    every even round, and the same permutation reversed for the round after it.

    Within a round the machine drifts too. In a reversed pair of rounds each pair of units
    swaps which goes first and by how many slots, so a drift that is linear over the two
    rounds biases their two ratios by equal and opposite amounts (the ABBA design of
    crossover trials); fresh permutations keep the pairs' orders unplanned."""
    rng = random.Random(seed)
    orders: list[list[Hashable]] = []
    for number in range(rounds):
        orders.append(next_order(orders[-1] if orders else [], list(units), number, rng))
    return orders


def next_order(previous: list[H], active: list[H], number: int, rng: random.Random) -> list[H]:
    """Round `number`'s order (:func:`round_orders`, one round at a time): a fresh shuffle of
    the `active` units for an even round, the previous order reversed for an odd one, keeping
    only the units still active (the load test lets converged units sit out)."""
    if number % 2 == 0 or not previous:
        order = list(active)
        rng.shuffle(order)
        return order
    return [name for name in reversed(previous) if name in active]


def round_ratios(
    bursts: pd.DataFrame, reference: str, *, unit: str = "service", value: str = "rps"
) -> pd.DataFrame:
    """Each unit's burst ÷ the reference's burst of the same round (and the same point).

    ``bursts`` has a ``round`` column, the ``unit`` column, the ``value`` column and any
    columns naming the point (payload, concurrency, ...): rounds are paired within a point.
    Returns those point columns, ``round``, ``unit`` and ``ratio``, for every unit but the
    reference, in the input's order; a round without the reference's burst pairs nothing.
    """
    point = [c for c in bursts.columns if c not in ("round", unit, value)]
    keys = [*point, "round"]
    ref = bursts[bursts[unit] == reference].set_index(keys)[value]
    if ref.index.has_duplicates:
        raise ValueError(f"{reference} has more than one burst in a round of one point")
    others = bursts[bursts[unit] != reference]
    denominators = ref.reindex(pd.MultiIndex.from_frame(others[keys])).to_numpy()
    paired = others.assign(ratio=others[value].to_numpy() / denominators)
    return paired.dropna(subset=["ratio"])[[*keys, unit, "ratio"]].reset_index(drop=True)


def intervals(
    bursts: pd.DataFrame, reference: str, *, unit: str = "service", value: str = "rps"
) -> pd.DataFrame:
    """:func:`ratio_interval` of every unit against the reference, per point: columns the
    point's, ``unit``, ``ratio``, ``ratio_ci_low``, ``ratio_ci_high``, ``rounds``,
    ``half_width_pct``."""
    ratios = round_ratios(bursts, reference, unit=unit, value=value)
    point = [c for c in ratios.columns if c not in ("round", unit, "ratio")]
    rows = []
    for key, group in ratios.groupby([*point, unit], sort=False):
        ci = ratio_interval(group["ratio"])
        names = [*point, unit]
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(names, keys, strict=True)), **interval_columns(ci)})
    return pd.DataFrame(rows)


def interval_columns(ci: RatioInterval) -> dict[str, float]:
    """A ratio's columns as every table of them names them (ratios.csv, :func:`intervals`)."""
    return {
        "ratio": ci.estimate,
        "ratio_ci_low": ci.low,
        "ratio_ci_high": ci.high,
        "rounds": ci.rounds,
        "half_width_pct": ci.half_width_pct,
    }


#: The kinds of ratio a run states, each a unit ÷ the unit it is compared with in the same
#: rounds: ``control`` (an A/A control ÷ its baseline: the same service twice, so 1 up to
#: the run's noise), ``baseline`` (a service ÷ its registry baseline, same variant: the
#: language's factor), ``tuned`` (a service ÷ its baseline's tuned stack, same variant: how
#: much of its lead over the baseline a tuned stack leaves, :func:`tuned_stacks`), ``step``
#: (a service ÷ the service it adds one change to, its ``step_from``, same variant: one step
#: of the ladder), ``variant`` (a variant ÷ fp32, same service), ``batching`` (a batched
#: service ÷ its unbatched ``twin``, same variant).
KINDS = ("control", "baseline", "tuned", "step", "variant", "batching")

Key = tuple[str, str]  # (service, variant)


@dataclass(frozen=True)
class Comparison:
    kind: str
    unit: Key
    versus: Key


def ladder_tops(baseline: dict[str, str], steps: dict[str, str]) -> dict[str, str]:
    """Each baseline -> its tuned stack: the service of that baseline that adds a change to
    another (has a ``step_from`` in `steps`), the top of the baseline's ladder. `baseline`
    holds the services that may be one (the callers leave the rungs and controls out)."""
    tops: dict[str, str] = {}
    for service, base in baseline.items():
        if base and steps.get(service):
            tops.setdefault(base, service)
    return tops


def tuned_stacks(baseline: dict[str, str], steps: dict[str, str]) -> dict[str, str]:
    """Each service -> its baseline's tuned stack (:func:`ladder_tops`), for the services
    that have one; the services that step from another get none: they are compared step by
    step."""
    tops = ladder_tops(baseline, steps)
    return {
        service: tops[base]
        for service, base in baseline.items()
        if base in tops and not steps.get(service)
    }


def comparisons(
    units: Iterable[Key],
    baseline: dict[str, str],
    twin: dict[str, str],
    base_variant: str = "fp32",
    controls: Iterable[str] = (),
    steps: dict[str, str] | None = None,
    rungs: Iterable[str] = (),
) -> list[Comparison]:
    """Every ratio among `units` the study states (:data:`KINDS`), for the pairs whose both
    sides are among the units: a unit without its baseline, tuned stack, step, fp32 or twin
    gets no such ratio (a step that is the service's baseline is its ``baseline`` ratio). A
    service of `controls` (an A/A control) is compared with its baseline only; `steps` maps
    a service to the one it adds a change to (its ``step_from``); a service of `rungs` is a
    step of a ladder only (never a tuned stack)."""
    present = list(dict.fromkeys(units))
    known = set(present)
    control = set(controls)
    steps = steps or {}
    rung = set(rungs)
    stacked = {s: b for s, b in baseline.items() if s not in rung and s not in control}
    tuned = tuned_stacks(stacked, steps)
    found: list[Comparison] = []
    for service, variant in present:
        if service in control:
            versus = (baseline.get(service, ""), variant)
            if versus in known:
                found.append(Comparison("control", (service, variant), versus))
            continue
        sides = {
            "baseline": (baseline.get(service, ""), variant),
            "tuned": (tuned.get(service, ""), variant),
            "step": (steps.get(service, ""), variant),
            "variant": (service, base_variant if variant != base_variant else ""),
            "batching": (twin.get(service, ""), variant),
        }
        if sides["step"] == sides["baseline"]:
            sides["step"] = ("", "")  # the ladder's first step is its baseline ratio
        for kind, versus in sides.items():
            if versus[0] and versus[1] and versus != (service, variant) and versus in known:
                found.append(Comparison(kind, (service, variant), versus))
    return found


RATIO_COLUMNS = [
    "kind", "service", "variant", "versus_service", "versus_variant", "ratio",
    "ratio_ci_low", "ratio_ci_high", "rounds", "half_width_pct", "converged",
]  # fmt: skip


def ratio_table(
    bursts: pd.DataFrame,
    compared: Iterable[Comparison],
    target_pct: float,
    *,
    value: str = "rps",
) -> pd.DataFrame:
    """Every comparison's paired ratio at every point of `bursts`.

    ``bursts`` has ``service``, ``variant``, ``round``, ``value`` and columns naming
    the point (payload, concurrency ...). A round pairs only when both sides have a burst in
    it. Returns the point's columns then :data:`RATIO_COLUMNS`; ``ratio_ci_low``/``high`` are
    NaN below 2 rounds, ``converged`` is ``half_width_pct <= target_pct``."""
    fixed = ("service", "variant", "round", value)
    point = [c for c in bursts.columns if c not in fixed]
    indexed = bursts.set_index(["service", "variant", *point, "round"])[value].sort_index()
    if indexed.index.has_duplicates:
        raise ValueError("a unit has more than one burst in a round of one point")
    rows: list[dict[str, object]] = []
    for comparison in compared:
        try:
            mine, theirs = indexed.loc[comparison.unit], indexed.loc[comparison.versus]
        except KeyError:
            continue
        ratios = (mine / theirs).dropna()
        if ratios.empty:
            continue
        levels = list(range(len(point)))
        groups = ratios.groupby(level=levels, sort=False) if point else [((), ratios)]
        for key, group in groups:
            ci = ratio_interval(group.to_numpy())
            columns = interval_columns(ci)
            spread = ci.rounds >= 2
            if not spread:  # one round: no interval worth a number in a table
                columns.update(ratio_ci_low=math.nan, ratio_ci_high=math.nan)
                columns.update(half_width_pct=math.nan)
            names = key if isinstance(key, tuple) else (key,)
            rows.append(
                {
                    **dict(zip(point, names, strict=True)),
                    "kind": comparison.kind,
                    "service": comparison.unit[0],
                    "variant": comparison.unit[1],
                    "versus_service": comparison.versus[0],
                    "versus_variant": comparison.versus[1],
                    **columns,
                    "converged": bool(spread and ci.half_width_pct <= target_pct),
                }
            )
    return pd.DataFrame(rows, columns=[*point, *RATIO_COLUMNS])
