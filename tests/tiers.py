"""The test tiers (pyproject.toml's markers): every test module declares exactly one, which
:func:`pytest_collection_modifyitems` (registered by conftest.py) enforces, and a run of one
tier does not import the others' modules (:func:`pytest_ignore_collect`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

#: The tiers (pyproject.toml's markers): every test module declares exactly one.
TIERS = ("unit", "system", "e2e")
#: A module's tier as its source declares it, read without importing the module.
DECLARED = re.compile(r"^pytestmark = pytest\.mark\.(\w+)\b", re.MULTILINE)


def declared_tier(path: Path) -> str | None:
    """The tier in `path`'s ``pytestmark = pytest.mark.<tier>`` line, None without exactly one."""
    found = DECLARED.findall(path.read_text(encoding="utf-8"))
    return found[0] if len(found) == 1 and found[0] in TIERS else None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m <tier>`` (``make test-fast`` is ``-m unit``), leave out the modules that
    declare another tier before they are imported: collecting the system tier's modules
    imports transformers, torch and nbformat, seconds that a unit run does not need. A module
    whose tier cannot be read this way is collected, so the check below still sees it."""
    wanted = config.getoption("markexpr", default="")
    name = collection_path.name
    if wanted not in TIERS or not (name.startswith("test_") and name.endswith(".py")):
        return None
    tier = declared_tier(collection_path)
    return True if tier is not None and tier != wanted else None


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
