"""The batch planner (service/CONTRACT.md "Batched services", step 4): one batch's token lengths
cut into sub-batches, each run once. Pure, so the policy is tested without a model; the Rust
twin is service/rust/rust-native-batched/src/plan.rs, and both pass the golden cases of
service/batching_cases.json.
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_sub_batches(
    lengths: Sequence[int], max_batch_tokens: int, max_padding: float
) -> list[list[int]]:
    """Indices of `lengths` (token counts, arrival order) cut into sub-batches, shortest first.

    Walking the items by length (a stable sort, so ties keep arrival order), an item starts a
    new sub-batch when adding it would make rows x longest exceed `max_batch_tokens` or the
    padding share exceed `max_padding`; a sub-batch of one is always allowed, even over the
    token budget.
    """
    groups: list[list[int]] = []
    tokens = 0  # real (unpadded) tokens of the last group
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        length = lengths[index]
        if groups:
            # Sorted ascending, so the new item is the sub-batch's longest row.
            positions = (len(groups[-1]) + 1) * length
            # The contract's formula, literally: the Rust service evaluates the same f64
            # expression, so both cut identically even at the boundary.
            padding = 1 - (tokens + length) / positions if positions else 0.0
            if positions <= max_batch_tokens and padding <= max_padding:
                groups[-1].append(index)
                tokens += length
                continue
        groups.append([index])
        tokens = length
    return groups
