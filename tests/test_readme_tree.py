"""The README's "How it is built" tree names every module of the package and of servekit, so a
newcomer's map of the code cannot silently fall behind it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]


def _tree() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How it is built", 1)[1]
    return section.split("```", 2)[1]


def _modules(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if p.name != "__init__.py")


def _named(tree: str, stem: str) -> bool:
    return re.search(rf"(?<![\w/]){re.escape(stem)}(?:\.py)?(?![\w])", tree) is not None


@pytest.mark.parametrize(
    "package", [ROOT / "src" / "servebench", ROOT / "service" / "python" / "servekit"], ids=str
)
def test_every_module_is_in_the_readme_tree(package: Path) -> None:
    tree = _tree()
    missing = [str(p.relative_to(ROOT)) for p in _modules(package) if not _named(tree, p.stem)]
    assert not missing, f"README.md's 'How it is built' does not name: {missing}"


def test_the_check_sees_a_missing_module() -> None:
    assert not _named("plan · verify · ceiling", "lifecycle")
    assert _named("plan · verify · lifecycle (one unit)", "lifecycle")
    assert not _named("batch_ceiling", "ceiling")
