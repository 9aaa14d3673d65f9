"""The test tiers (pyproject.toml's markers): every test module declares exactly one, which
:func:`pytest_collection_modifyitems` (registered by conftest.py) enforces."""

from __future__ import annotations

import pytest

#: The tiers (pyproject.toml's markers): every test module declares exactly one.
TIERS = ("unit", "system", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a collection in which a test module has no tier, or more than one: a module
    without one would run in neither `make test-fast` nor a tier of its own."""
    tiers: dict[str, set[str]] = {}
    for item in items:
        marks = {m.name for m in item.iter_markers() if m.name in TIERS}
        tiers.setdefault(item.nodeid.split("::")[0], set()).update(marks or {"none"})
    wrong = {module: sorted(t) for module, t in tiers.items() if len(t) != 1 or "none" in t}
    if wrong:
        listing = "; ".join(f"{module}: {', '.join(t)}" for module, t in sorted(wrong.items()))
        raise pytest.UsageError(
            f"every test module needs exactly one tier mark ({', '.join(TIERS)}) in its "
            f"`pytestmark`: {listing}"
        )
