"""The Python services' stack levers (service/CONTRACT.md, "Command line"): the seed's stack by
default whatever is installed, every registry command a valid combination, and the thin
routes' fast JSON path answering every body exactly as the contract's own parser does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from contract_cases import contract_cases
from hypothesis import example, given, settings
from hypothesis import strategies as st

from servebench import registry
from servekit import asgi, contract, server, service

pytestmark = pytest.mark.unit


def outcome(parse: object, body: bytes) -> tuple[str, object]:
    """A parser's answer to `body`: ("text", the text) or ("refused", status and message)."""
    try:
        return "text", parse(body)  # type: ignore[operator]
    except contract.Refusal as refusal:
        return "refused", (refusal.status, refusal.message)


def test_the_defaults_are_the_seeds_stack_even_with_the_fast_parts_installed() -> None:
    args = service.parse_args(["--model-dir", "m"])
    assert (args.http, args.loop, args.tokenizer, args.routes, args.inference_on) == (
        "h11",
        "asyncio",
        "transformers",
        "fastapi",
        "pool",
    )
    config = server.uvicorn_config(object(), args)
    assert (config.http, config.loop) == ("h11", "asyncio")  # not uvicorn's "auto"


def test_every_python_service_in_the_registry_is_a_valid_combination() -> None:
    """A typo in a registry command's lever would otherwise show only when the run starts it."""
    checked = []
    for name, svc in registry.load_registry().items():
        command = [str(part) for part in svc.command]
        if "service/python/app.py" not in command:
            continue
        flags = command[command.index("service/python/app.py") + 1 :]
        args = service.parse_args([f if "{" not in f else "1" for f in flags])
        checked.append((name, args.routes))
    assert ("python", "fastapi") in checked
    assert any(routes_ == "thin" for _, routes_ in checked)  # the tuned service is one of them


def test_refusing_a_bad_lever_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        service.parse_args(["--model-dir", "m", "--routes", "flask"])
    assert "--routes" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case", [c for c in contract_cases() if c.path == "/age" and c.body is not None], ids=str
)
def test_thin_parser_answers_every_contract_case_as_the_contract(case: object) -> None:
    body = case.body  # type: ignore[attr-defined]
    assert outcome(asgi.parse_body, body) == outcome(contract.parse_body, body)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(text=st.text(), others=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=2))
@example(text="\ud800", others={})
@example(text=" \u3000\x1c", others={})
@example(text="I love it", others={"x": float("nan")})
def test_thin_parser_agrees_on_generated_objects(text: str, others: dict[str, object]) -> None:
    document = {"inputs": text, **others}
    body = json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")
    assert outcome(asgi.parse_body, body) == outcome(contract.parse_body, body)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(body=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
@example(body=b'{"inputs": "a", "inputs": "b"}')
@example(body=b'{"inputs": "a\\ud800"}')
@example(body=b' {"inputs": "ok"} ')
def test_thin_parser_agrees_on_raw_bodies(body: bytes) -> None:
    assert outcome(asgi.parse_body, body) == outcome(contract.parse_body, body)


def test_tokenizer_levers_are_one_list(tmp_path: Path) -> None:
    """The flag's choices are servekit.tokenize's front ends, and an unknown one is refused
    with the names of those that exist."""
    from servekit import tokenize

    args = service.parse_args(["--model-dir", "m", "--tokenizer", "tokenizers"])
    assert args.tokenizer in tokenize.TOKENIZER_APIS
    with pytest.raises(ValueError, match="transformers, tokenizers"):
        tokenize.front_end("sentencepiece", tmp_path, {}, ("input_ids",), 8)
