"""The tier rule itself (tests/tiers.py): a module with no tier, or two, stops the collection
with a message naming it; one tier per module passes; a run of one tier does not import the
modules that declare another."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.unit

CONFTEST = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from tiers import pytest_collection_modifyitems, pytest_ignore_collect
"""
MARKERS = "[pytest]\nmarkers =\n    unit: u\n    system: s\n    e2e: e\n"


def collect(pytester: pytest.Pytester, *args: str, **modules: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(MARKERS)
    pytester.makepyfile(**modules)
    return pytester.runpytest("--collect-only", "-q", *args)


def test_one_tier_per_module_is_collected(pytester: pytest.Pytester) -> None:
    result = collect(
        pytester,
        test_a="import pytest\npytestmark = pytest.mark.unit\ndef test_x(): pass\n",
        test_b="import pytest\n@pytest.mark.system\ndef test_y(): pass\n",
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*test_a.py::test_x*", "*test_b.py::test_y*"])


def test_a_module_without_a_tier_or_with_two_is_refused(pytester: pytest.Pytester) -> None:
    result = collect(
        pytester,
        test_none="def test_x(): pass\n",
        test_two=(
            "import pytest\n@pytest.mark.unit\ndef test_y(): pass\n"
            "@pytest.mark.system\ndef test_z(): pass\n"
        ),
        test_fine="import pytest\npytestmark = pytest.mark.e2e\ndef test_w(): pass\n",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*exactly one tier*test_none.py: none*test_two.py: system, unit*"])
    assert "test_fine" not in result.stderr.str()


def test_a_run_of_one_tier_does_not_import_another_tiers_modules(
    pytester: pytest.Pytester,
) -> None:
    modules = {
        "test_unit": "import pytest\npytestmark = pytest.mark.unit\ndef test_x(): pass\n",
        "test_heavy": (
            "import pytest\npytestmark = pytest.mark.system  # why\n"
            "raise SystemExit('imported')\ndef test_y(): pass\n"
        ),
    }
    result = collect(pytester, "-m", "unit", **modules)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*test_unit.py::test_x*"])
    assert "test_heavy" not in result.stdout.str()
    # Without -m, every module is imported (and this one's import fails, as it should).
    assert collect(pytester, **modules).ret != pytest.ExitCode.OK
