"""The tier rule itself (tests/tiers.py): a module with no tier, or two, stops the collection
with a message naming it; one tier per module passes."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.unit

CONFTEST = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from tiers import pytest_collection_modifyitems
"""
MARKERS = "[pytest]\nmarkers =\n    unit: u\n    system: s\n    e2e: e\n"


def collect(pytester: pytest.Pytester, **modules: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(MARKERS)
    pytester.makepyfile(**modules)
    return pytester.runpytest("--collect-only", "-q")


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
