"""Fuzzing the loader: whatever the file holds, the answer is a Scenario or a ScenarioError.

Random TOML-ish documents (real keys with wrong values, made-up keys, nested tables, sweeps),
written by a tiny TOML writer, sometimes mutated into broken TOML, plus random bytes and random
``--set`` overrides. Nothing may escape but :class:`ScenarioError`, and every problem is one line
that starts with its source.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.scenario import (
    SETTINGS,
    Scenario,
    ScenarioError,
    expand,
    load_scenario,
    parse_scenario,
    resolved_dict,
)
from sim.scenario.problems import get_dotted

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SECTIONS = sorted({key.split(".")[0] for key in SETTINGS if "." in key})
LEAVES = sorted({part for key in SETTINGS for part in key.split(".")})
DEFAULTS = {key: get_dotted(resolved_dict(parse_scenario({"name": "x", "seed": 1})), key)
            for key in SETTINGS if key not in ("name", "seed")}  # fmt: skip
WORDS = ["transparent", "threshold", "diffusion", "dandelion", "complete", "bft", "lmsr", "x"]

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
plausible = st.one_of(
    st.integers(min_value=-1, max_value=120),
    st.floats(min_value=0.0, max_value=5e4),
    st.booleans(),
    st.sampled_from(WORDS),
)
keys = st.one_of(st.sampled_from(LEAVES + SECTIONS + ["sweep"]), st.text(max_size=8))
values = st.recursive(
    scalars | plausible,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=6,
)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` four times in five: whole documents must often come out valid."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda i: bad if i == 0 else good)


def _setting(key: str) -> st.SearchStrategy[Any]:
    return _mostly(st.just(DEFAULTS[key]), plausible | scalars)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _section(name: str) -> st.SearchStrategy[dict[str, Any]]:
    leaves = [key.split(".", 1)[1] for key in SETTINGS if key.startswith(f"{name}.")]
    picked = st.lists(st.sampled_from(leaves), max_size=3, unique=True)
    known = picked.flatmap(
        lambda ks: st.fixed_dictionaries({k: _setting(f"{name}.{k}") for k in ks}).map(_nest)
    )
    return _mostly(known, st.dictionaries(keys, values, max_size=3))


swept = st.lists(st.sampled_from([k for k in DEFAULTS if k != "replications"]), max_size=2,
                 unique=True)  # fmt: skip
sweeps = _mostly(
    swept.flatmap(
        lambda ks: st.fixed_dictionaries(
            {k: st.lists(_setting(k), min_size=1, max_size=3) for k in ks}
        )
    ),
    st.dictionaries(st.sampled_from(SETTINGS) | st.text(max_size=12), values, max_size=2),
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "name": _mostly(st.sampled_from(["fuzz", "a-1"]), scalars),
        "seed": _mostly(st.integers(min_value=0, max_value=2**63 - 1), scalars),
        "replications": _mostly(st.integers(min_value=1, max_value=3), scalars),
        "duration_s": _setting("duration_s"),
        **{section: _section(section) for section in SECTIONS},
        "sweep": sweeps,
    },
).flatmap(
    lambda doc: _mostly(st.just({}), st.dictionaries(keys, values, max_size=1)).map(
        lambda junk: junk | doc
    )
)
overrides = st.lists(
    st.one_of(
        st.builds(lambda k, v: f"{k}={v}", st.sampled_from(SETTINGS), st.text(max_size=10)),
        st.builds(lambda k, v: f"{k}={v}", st.sampled_from(SETTINGS), st.sampled_from(WORDS)),
        st.text(max_size=20),
    ),
    max_size=2,
)


def _key(key: str) -> str:
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return _string(key)


def _string(text: str) -> str:
    # JSON escapes are TOML escapes, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"


def to_toml(doc: dict[str, Any]) -> str:
    """Top-level scalars first, then one ``[table]`` per dict (nested dicts inline)."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{_key(name)}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "fuzz.toml"


def _check(path: Path, sets: list[str]) -> None:
    try:
        scenario = load_scenario(path, overrides=sets)
    except ScenarioError as exc:
        assert exc.problems
        for problem in exc.problems:
            line = str(problem)
            assert len(line.splitlines()) == 1 and "\n" not in line and "\r" not in line
            assert line.startswith((f"{path}: ", "--set: "))
            assert "pydantic" not in line
        return
    assert isinstance(scenario, Scenario)
    specs = expand(scenario)
    assert len({spec.run_id for spec in specs}) == len(specs)


def test_the_toml_writer_round_trips() -> None:
    import tomllib

    doc = {"a": 1, "b c": "x\x7f\n", "t": {"k": [1.5, True], "n": {"x": -2}}, "f": float("inf")}
    assert tomllib.loads(to_toml(doc)) == doc


breakages = st.none() | st.tuples(st.integers(min_value=0, max_value=400), st.text(max_size=3))


@FUZZ
@given(doc=documents, sets=overrides, valid_base=st.booleans(), breakage=breakages)
def test_random_documents_give_a_scenario_or_one_line_problems(
    scratch: Path,
    doc: dict[str, Any],
    sets: list[str],
    valid_base: bool,
    breakage: tuple[int, str] | None,
) -> None:
    if valid_base:  # a valid name and seed, so the sections' keys and values are what fails
        doc = {**doc, "name": "fuzz", "seed": 3}
    text = to_toml(doc)
    if breakage is not None:  # break the TOML: splice junk in somewhere
        cut, junk = breakage
        text = text[:cut] + junk + text[cut:]
    scratch.write_text(text, encoding="utf-8")
    _check(scratch, sets)


@FUZZ
@given(data=st.binary(max_size=600), sets=overrides)
def test_random_bytes_give_one_line_problems(scratch: Path, data: bytes, sets: list[str]) -> None:
    scratch.write_bytes(data)
    _check(scratch, sets)
