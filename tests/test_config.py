"""Parameters: YAML inheritance, overrides, and the fair-budget rule."""

from __future__ import annotations

import pytest

from servebench import config


def test_quick_extends_default() -> None:
    default, quick = config.load("default"), config.load("quick")
    assert quick["config"] == "quick"
    assert quick["model_id"] == default["model_id"]
    assert quick["n_requests"] < default["n_requests"]
    assert set(quick) == set(default)


def test_overrides_parse_yaml_and_lists() -> None:
    merged = config.with_overrides(
        config.load("default"),
        ["repeats=5", "services=python,rust-native-release", "openloop=false"],
    )
    assert merged["repeats"] == 5
    assert merged["services"] == ["python", "rust-native-release"]
    assert merged["openloop"] is False


def test_unknown_override_is_refused() -> None:
    with pytest.raises(config.ConfigError, match="unknown parameter 'repeat'"):
        config.with_overrides(config.load("default"), ["repeat=5"])


def test_unknown_config_names_the_known_ones() -> None:
    with pytest.raises(config.ConfigError, match="default"):
        config.load("nope")


def test_budget_must_match_server_cores() -> None:
    parameters = config.load("default") | {"server_cpus": "0", "workers": 1, "threads": 2}
    with pytest.raises(config.ConfigError, match="workers x threads"):
        config.validate(parameters)
    config.validate(parameters | {"server_cpus": "0-1"})


@pytest.mark.parametrize(("spec", "cpus"), [("0", [0]), ("0-2,5", [0, 1, 2, 5]), ("", [])])
def test_cpu_list(spec: str, cpus: list[int]) -> None:
    assert config.cpu_list(spec) == cpus
