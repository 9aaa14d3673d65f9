"""Parameters: YAML inheritance, overrides, and every check made before a run starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from servebench import config, paths

pytestmark = pytest.mark.unit


def test_quick_extends_default() -> None:
    default, quick = config.load_study("default"), config.load_study("quick")
    assert quick.config == "quick" and default.config == "default"
    assert quick.model_id == default.model_id
    assert quick.n_requests < default.n_requests
    assert set(config.load("quick")) == set(config.load("default"))


def test_default_yaml_sets_every_parameter_and_nothing_else() -> None:
    # The batching policy's defaults are service/batching_policy.json's, not the YAML's.
    unset = set(config.PARAMETERS) - set(config.BATCH_POLICY)
    assert set(config.load("default")) - {"config"} == unset


def test_the_batching_policy_defaults_to_the_services_file() -> None:
    policy = json.loads((paths.SERVICE / "batching_policy.json").read_text())["defaults"]
    study = config.load_study("default")
    assert {name: getattr(study, name) for name in policy} == policy
    assert config.load_study("default", ["max_padding=0.1"]).max_padding == 0.1
    parameters = {**config.load("quick"), "max_queue": 7}
    assert config.build(parameters).max_queue == 7


def test_overrides_parse_yaml_and_lists() -> None:
    study = config.load_study(
        "default", ["max_rounds=12", "services=python,rust-native-release", "openloop=false"]
    )
    assert study.max_rounds == 12
    assert study.services == ["python", "rust-native-release"]
    assert study.openloop is False


def test_a_run_config_round_trips(tmp_path: Path) -> None:
    study = config.load_study("quick", ["max_rounds=2"])
    study.write(tmp_path / "config.yaml")
    assert config.from_run(tmp_path) == study
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["config"] == "quick"


# One line per bad value: the parameter, the value, and what is allowed.
BAD = {
    "repeat=5": "repeat: unknown parameter; known: base_variant_only, batch_sizes, burst_min_per",
    "services=[nope]": "services=['nope']: unknown service 'nope'; known: python",
    "concurrency=0": "concurrency=0: must be an integer >= 1",
    "server_cpus='7'": "server_cpus='7': CPU 7 is not available here",
    "model_id=/nonexistent/dir": "model_id='/nonexistent/dir': no such directory",
    "payloads=[seed,nope]": "payloads=['seed', 'nope']: no payload 'nope'; known:",
    "workers=two": "workers='two': must be an integer >= 1",
    "openloop=3": "openloop=3: must be true or false",
    "concurrency_levels=[]": "concurrency_levels=[]: must be a non-empty list of integers",
    "n_requests=10": "n_requests=10: must be at least concurrency=50",
    "threads=2": "workers x threads = 2 but server_cpus='0' has 1 CPU(s)",
    "loadgen_cpus='0'": "server_cpus='0', loadgen_cpus='0': they overlap",
    "soak_s=-1": "soak_s=-1: must be a number >= 0",
    "repeats": "override 'repeats': not key=value",
    "max_padding=1": "max_padding=1.0: must be 0 <= share < 1",
    "schedule=fifo": "schedule='fifo': must be one of batch, continuous",
    "max_queue=0": "max_queue=0: must be an integer >= 1",
    "batch_sizes=[0,4]": "batch_sizes=0: must be integers >= 1",
    "min_rounds=1": "min_rounds=1: must be an integer >= 2",
    "max_rounds=3": "max_rounds=3: must be at least min_rounds=6",
    "repeats=3": "repeats: unknown parameter",
    "services=[python-aa]": "python-aa is an A/A control of python, which is not measured",
}


def test_batching_parameters_reach_the_services_as_their_environment() -> None:
    study = config.load_study("quick", ["max_batch_size=8", "max_padding=0.5", "max_wait_ms=40"])
    env = study.batching_env()
    assert env == {
        "MAX_BATCH_SIZE": "8", "MAX_BATCH_TOKENS": "8192", "MAX_BATCH_DELAY_US": "0",
        "MAX_QUEUE": "1024", "MAX_PADDING": "0.5", "MAX_WAIT_MS": "40", "SCHEDULE": "batch",
    }  # fmt: skip


@pytest.mark.parametrize(("override", "message"), BAD.items(), ids=list(BAD))
def test_bad_parameters_are_refused_in_one_line(override: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        config.load_study("default", [override])
    text = str(refused.value)
    assert message in text
    assert "\n" not in text


def test_unknown_config_names_the_known_ones() -> None:
    with pytest.raises(config.ConfigError, match=r"unknown; use one of .*default"):
        config.load_study("nope")


def test_an_unknown_key_in_a_file_is_refused(tmp_path: Path) -> None:
    custom = tmp_path / "mine.yaml"
    custom.write_text("extends: default\nrepeets: 2\n")
    with pytest.raises(config.ConfigError, match="repeets: unknown parameter"):
        config.load_study(custom)


def test_a_file_may_extend_a_named_configuration(tmp_path: Path) -> None:
    custom = tmp_path / "mine.yaml"
    custom.write_text("extends: quick\nmax_rounds: 6\n")
    study = config.load_study(custom)
    assert (study.config, study.max_rounds) == ("mine", 6)
    assert study.n_requests == config.load_study("quick").n_requests


def test_unpinned_runs_need_both_lists_empty() -> None:
    study = config.load_study("default", ["server_cpus=''", "loadgen_cpus=''"])
    assert study.server_cpu_list == [] and config.cpu_list(study.loadgen_cpus) == []
    with pytest.raises(config.ConfigError, match="pin both or neither"):
        config.load_study("default", ["server_cpus=''"])


@pytest.mark.parametrize(
    ("spec", "cpus"),
    [("0", [0]), ("0-2,5", [0, 1, 2, 5]), ("", []), (1, [1]), ([0, "2-3"], [0, 2, 3]),
     ("1 0", [0, 1]), (None, [])],
)  # fmt: skip
def test_cpu_list(spec: object, cpus: list[int]) -> None:
    assert config.cpu_list(spec) == cpus


@pytest.mark.parametrize("spec", [True, "a", "1-", "-1", 1.5])
def test_cpu_list_refuses_what_taskset_would(spec: object) -> None:
    with pytest.raises(ValueError, match="not a CPU list"):
        config.cpu_list(spec)
