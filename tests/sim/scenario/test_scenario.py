"""The scenario file: defaults, one-line errors with dotted keys, --set, the gate, sweeps, ids."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from market.types import ORDER_WIRE_BYTES
from sim.rng import derive_seed
from sim.scenario import (
    MAX_RUNS,
    MIN_PAD_BYTES,
    SETTINGS,
    Problem,
    Scenario,
    ScenarioError,
    canonical_json,
    expand,
    load_scenario,
    parse_override,
    resolved_dict,
)
from sim.scenario.expand import point_slug
from sim.scenario.problems import get_dotted

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = 'name = "t"\nseed = 1\n'

# The documented defaults (the scenario file's key list), written out by hand.
DEFAULTS: dict[str, Any] = {
    "duration_s": 43200.0, "replications": 1,
    "network.nodes": 100, "network.topology": "random_regular", "network.degree": 8,
    "network.latency_ms.median": 50.0, "network.latency_ms.sigma": 0.5, "network.loss": 0.0,
    "network.diffusion_delay_ms": 2000.0,
    "network.propagation": "diffusion", "network.fluff_probability": 0.1,
    "network.dandelion_epoch_s": 600.0, "network.block_interval_s": 2.0,
    "market.mechanism": "lmsr", "market.count": 4, "market.outcomes": 2,
    "market.liquidity_b": 100.0, "market.alpha": 0.05, "market.fee": 0.0,
    "market.close_s": 36000.0, "market.resolve_s": 39600.0,
    "market.prior.alpha": 1.5, "market.prior.beta": 1.5,
    "traders.informed": 20, "traders.noise": 40, "traders.signal_draws": 10,
    "traders.risk_aversion": 0.0, "traders.price_weight": 0.0,
    "traders.budget": 1000.0, "traders.orders_per_hour": 4.0, "traders.order_size": 10.0,
    "privacy.order_flow": "transparent", "privacy.batch_interval_s": 30.0,
    "privacy.pad_to_bytes": 256, "privacy.keypers": 10, "privacy.threshold": 7,
    "privacy.reveal_deadline_s": 60.0, "privacy.deposit": 5.0, "privacy.unlinkable_senders": False,
    "privacy.reveal_delay_s": 0.0, "privacy.reveal_failure": 0.0, "privacy.sender_proofs": False,
    "adversary.spy_fraction": 0.1, "adversary.frontrunner": False,
    "adversary.colluding_keypers": 0, "adversary.operator_frontruns": False,
    "adversary.priority_fee": 0.01, "adversary.copycat": False, "adversary.cheating_keypers": 0,
    "settlement.protocol": "bft", "settlement.reporters": 21,
    "settlement.byzantine_fraction": 0.0, "settlement.crash_fraction": 0.0,
    "settlement.crash_window_s": 1200.0, "settlement.observation_error": 0.0,
    "settlement.byzantine_strategy": "fixed",
    "settlement.round_timeout_s": 30.0, "settlement.bond": 750.0, "settlement.liveness_s": 7200.0,
    "settlement.endowment": 2000.0,
    "forecaster.enabled": False, "forecaster.clients": 40, "forecaster.features": 16,
    "forecaster.samples_per_client": 200, "forecaster.non_iid": 0.5, "forecaster.rounds": 20,
    "forecaster.client_fraction": 0.5, "forecaster.local_steps": 5,
    "forecaster.learning_rate": 0.5, "forecaster.batch_size": 32, "forecaster.dropout": 0.1,
    "forecaster.secure_aggregation": True, "forecaster.dp_noise_multiplier": 0.0,
    "forecaster.dp_clip": 1.0, "forecaster.dp_delta": 1e-5, "forecaster.round_timeout_s": 60.0,
    "forecaster.secagg_bound": 8.0,
    "forecaster.dp_noise_at": "server",
    "forecaster.withdraw_fraction": 0.0,
    "forecaster.client_epsilon_budget": "inf",
    "faults.partitions": [], "faults.crashes": [],
}  # fmt: skip


def _write(tmp_path: Path, text: str | bytes, name: str = "s.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _problems(path: Path | str, overrides: tuple[str, ...] = ()) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=overrides)
    problems = list(info.value.problems)
    assert problems
    for problem in problems:
        line = str(problem)
        assert "\n" not in line and "\r" not in line
        assert "pydantic" not in line and "http" not in line and "Traceback" not in line
        assert "instance of" not in line  # pydantic's class-name wording stays hidden
    assert str(info.value).splitlines() == [str(p) for p in problems]
    return problems


def _one(problems: list[Problem], key: str) -> Problem:
    found = [p for p in problems if p.key == key]
    assert found, f"no problem at {key!r} in {[str(p) for p in problems]}"
    return found[0]


# --- defaults and the bundled scenario ----------------------------------------------------------


def test_every_default_is_the_documented_one(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, MINIMAL))
    data = resolved_dict(scenario)
    assert {key: get_dotted(data, key) for key in DEFAULTS} == DEFAULTS
    assert set(SETTINGS) == set(DEFAULTS) | {"name", "seed"}  # no undocumented setting
    assert (scenario.name, scenario.seed, scenario.sweep) == ("t", 1, {})


@pytest.mark.parametrize("missing", ["name", "seed"])
def test_name_and_seed_are_required(tmp_path: Path, missing: str) -> None:
    text = "\n".join(line for line in MINIMAL.splitlines() if not line.startswith(missing))
    problem = _one(_problems(_write(tmp_path, text)), missing)
    assert problem.message == "required key is missing"


def test_the_quickstart_is_small_valid_and_runnable() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.toml")
    assert scenario.name == "quickstart"
    assert (scenario.network.nodes, scenario.network.degree, scenario.market.count) == (40, 6, 2)
    assert (scenario.traders.informed, scenario.traders.noise) == (6, 10)
    assert scenario.market.close_s < scenario.market.resolve_s <= scenario.duration_s == 14400.0
    assert len(expand(scenario)) == 1


def test_models_are_frozen_and_round_trip_through_their_json(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, MINIMAL + "[market]\nliquidity_b = 40\n"))
    assert scenario.market.liquidity_b == 40.0 and isinstance(scenario.market.liquidity_b, float)
    with pytest.raises(ValueError, match="frozen"):
        scenario.network.nodes = 3  # type: ignore[misc]
    data = json.loads(json.dumps(resolved_dict(scenario)))
    assert Scenario.model_validate(data) == scenario


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, 2.5, "x"], "c": {"z": True, "y": None}}) == (
        '{"a":[1,2.5,"x"],"b":1,"c":{"y":null,"z":true}}'
    )


def test_min_pad_holds_an_encoded_order() -> None:
    assert ORDER_WIRE_BYTES == 32 and MIN_PAD_BYTES > ORDER_WIRE_BYTES


# --- bad input: one line per problem, the right dotted key --------------------------------------

BAD = [
    ('[network]\nnodes = "ten"\n', "network.nodes", 'valid integer, got "ten"'),
    ("[network]\nnodes = 3.5\n", "network.nodes", "valid integer, got 3.5"),
    ("[network]\nnodes = true\n", "network.nodes", "valid integer, got true"),
    ("[traders]\ninformed = -1\n", "traders.informed", "greater than or equal to 0, got -1"),
    ("[network]\nlatency_ms = { median = -5.0 }\n", "network.latency_ms.median", "greater than 0"),
    ("[network]\nloss = 1.0\n", "network.loss", "less than 1"),
    ("[network]\ntopology = \"ring\"\n", "network.topology", '"ring"'),
    ("duration_s = inf\n", "duration_s", "finite"),
    ("[forecaster]\nenabled = 1\n", "forecaster.enabled", "valid boolean"),
    ("network = 5\n", "network", "must be a table, got 5"),
    ("nmae = 1\n", "nmae", "unknown key (did you mean 'name'?)"),
    ("[netwrok]\nnodes = 5\n", "netwrok", "unknown key (did you mean 'network'?)"),
    ("[network]\nnodez = 5\n", "network.nodez", "unknown key (did you mean 'network.nodes'?)"),
    ("[network.latency_ms]\nmedain = 5.0\n", "network.latency_ms.medain",
     "unknown key (did you mean 'network.latency_ms.median'?)"),
    ("nodes = 5\n", "nodes", "unknown key (did you mean 'network.nodes'?)"),
    ("[network]\nkeypers = 5\n", "network.keypers", "(did you mean 'privacy.keypers'?)"),
    ("[traders]\nsignal_accuracy = 0.7\n", "traders.signal_accuracy",
     "was retired: informed traders now see traders.signal_draws"),
    ("[market]\nprior = { alpha = 0.0 }\n", "market.prior.alpha", "greater than 0"),
    ("[market]\nprior = { alpha = 2.0, mean = 0.5 }\n", "market.prior.mean", "unknown key"),
    ("[market]\nprior = 0.5\n", "market.prior", "must be a table, got 0.5"),
    ("[market]\noutcomes = 3\nprior = { alpha = 2.0, beta = 1.0 }\n", "market.prior",
     "a market with 3 outcomes takes a symmetric Dirichlet prior: alpha must equal beta"),
    ("[traders]\nprice_weight = 1.5\n", "traders.price_weight", "less than or equal to 1"),
    ("[traders]\nrisk_aversion = -1.0\n", "traders.risk_aversion", "greater than or equal"),
    ("[privacy]\nkeypers = 5\nthreshold = 7\n", "privacy.threshold",
     "must be at most privacy.keypers (5), got 7"),
    ("[adversary]\ncolluding_keypers = 11\n", "adversary.colluding_keypers",
     "must be at most privacy.keypers (10), got 11"),
    ("[adversary]\ncheating_keypers = 10\n", "adversary.cheating_keypers",
     "must be below privacy.keypers (10): the DKG needs an honest dealer, got 10"),
    ("[network]\nnodes = 20\n", "settlement.reporters", "must be at most network.nodes (20)"),
    ("[network]\nnodes = 8\ndegree = 8\n", "network.degree", "less than network.nodes (8)"),
    ("[network]\nnodes = 25\ndegree = 3\n", "network.degree", "nodes × degree even"),
    ("[network]\ntopology = \"watts_strogatz\"\ndegree = 5\n", "network.degree", "even degree"),
    ("[market]\nclose_s = 40000.0\n", "market.close_s", "at most market.resolve_s (39600.0)"),
    ("duration_s = 100.0\n[market]\nclose_s = 50.0\nresolve_s = 200.0\n", "market.resolve_s",
     "at most duration_s (100.0), got 200.0"),
    ("[privacy]\npad_to_bytes = 32\n", "privacy.pad_to_bytes", f"at least {MIN_PAD_BYTES}"),
    ("[privacy]\nreveal_deadline_s = 0.5\n", "privacy.reveal_deadline_s",
     "at least network.block_interval_s (2.0)"),
    ("[settlement]\nbyzantine_fraction = 0.6\ncrash_fraction = 0.6\n",
     "settlement.crash_fraction", "at most 1"),
    ("[forecaster]\nenabled = true\n[market]\noutcomes = 3\n", "forecaster.enabled",
     "market.outcomes = 2"),
    ("replications = 10001\n", "replications", "less than or equal to 10000"),
    ('[forecaster]\nenabled = true\ndp_noise_multiplier = 1.0\nsecure_aggregation = false\n'
     'dp_noise_at = "clients"\n', "forecaster.dp_noise_at", "needs forecaster.secure_aggregation"),
    ("[forecaster]\nenabled = true\nclient_epsilon_budget = 3.0\n",
     "forecaster.client_epsilon_budget", "needs DP"),
    ("[forecaster]\nclient_epsilon_budget = nan\n", "forecaster.client_epsilon_budget",
     "greater than 0"),
    ("[forecaster]\nwithdraw_fraction = 1.5\n", "forecaster.withdraw_fraction",
     "less than or equal to 1"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "key", "fragment"), BAD)
def test_bad_values_name_the_dotted_key(
    tmp_path: Path, extra: str, key: str, fragment: str
) -> None:
    path = _write(tmp_path, MINIMAL + extra)
    problem = _one(_problems(path), key)
    assert fragment in problem.message
    assert str(problem) == f"{path}: {key}: {problem.message}"


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL + "[network]\nnodes = 15\ndegree = 3\n[privacy]\nkeypers = 5\nthreshold = 7\n"
    keys = {p.key for p in _problems(_write(tmp_path, text))}
    assert keys == {"network.degree", "privacy.threshold", "settlement.reporters"}


def test_unused_components_do_not_constrain_a_small_network(tmp_path: Path) -> None:
    # 10 keypers and 40 forecaster clients on 8 nodes: fine while neither component runs.
    text = MINIMAL + "[network]\nnodes = 8\ndegree = 2\n[settlement]\nreporters = 5\n"
    assert load_scenario(_write(tmp_path, text)).network.nodes == 8
    text += '[privacy]\norder_flow = "threshold"\n'
    assert _one(_problems(_write(tmp_path, text)), "privacy.keypers").message == (
        "must be at most network.nodes (8), got 10"
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'name = "x"\nseed = 1\n[network\n', "invalid TOML: "),
        (b'name = "x"\nseed = = 1\n', "invalid TOML: "),
        (b"", "the file is empty"),
        (b"# only a comment\n\n   \n", "the file is empty"),
        (b'name = "x"\x00\n', "invalid TOML: "),
        (b"\xff\xfe\x00garbage", "cannot read: not a UTF-8 text file"),
    ],
)
def test_whole_file_problems_have_no_key(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = _write(tmp_path, content)
    [problem] = _problems(path)
    assert problem.key == "" and problem.message.startswith(fragment)
    assert str(problem) == f"{path}: {problem.message}"


def test_random_bytes_are_a_whole_file_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, random.Random(7).randbytes(4096))
    [problem] = _problems(path)
    assert problem.key == ""
    assert problem.message.startswith(("cannot read: not a UTF-8", "invalid TOML"))


def test_a_missing_file_and_a_directory_cannot_be_read(tmp_path: Path) -> None:
    [missing] = _problems(tmp_path / "nope.toml")
    assert str(missing) == f"{tmp_path / 'nope.toml'}: cannot read: no such file"
    [directory] = _problems(tmp_path)
    assert str(directory).startswith(f"{tmp_path}: cannot read: ")


def test_a_control_character_in_a_key_stays_on_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + '"evil\\nkey\\u2028" = 1\n')
    problem = _one(_problems(path), '"evil\\nkey\\u2028"')
    assert problem.message == "unknown key"


def test_a_bad_name_says_what_is_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name = "Bad Name"\nseed = 1\n')
    assert "lowercase letters, digits and '-'" in _one(_problems(path), "name").message


# --- --set overrides ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("privacy.order_flow=threshold", ("privacy.order_flow", "threshold")),
        ("network.nodes=12", ("network.nodes", 12)),
        (" market.fee = 0.5 ", ("market.fee", 0.5)),
        ("adversary.frontrunner=false", ("adversary.frontrunner", False)),
        ('name="a=b"', ("name", "a=b")),
        ("name=a b", ("name", "a b")),
        ("name=1\nseed = 2", ("name", "1\nseed = 2")),  # one value, never a second key
        ("network.latency_ms.sigma=1e-3", ("network.latency_ms.sigma", 0.001)),
    ],
)
def test_parse_override_reads_toml_values_else_strings(
    text: str, expected: tuple[str, Any]
) -> None:
    assert parse_override(text) == expected
    assert type(parse_override(text)[1]) is type(expected[1])


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("nonsense", "", "expected KEY=VALUE"),
        ("=3", "", "empty key"),
        ("netwrk.nodes=3", "netwrk.nodes", "unknown key (did you mean 'network.nodes'?)"),
        ("traders.signal_accuracy=0.9", "traders.signal_accuracy", "set traders.signal_draws"),
        ("network=3", "network", "is a section; set one of its keys, such as network.nodes"),
        ("sweep.network.nodes=[1, 2]", "sweep.network.nodes", "cannot be changed with --set"),
    ],
)
def test_malformed_overrides_name_set_as_the_source(text: str, key: str, fragment: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_override(text)
    [problem] = info.value.problems
    assert (problem.source, problem.key) == ("--set", key)
    assert fragment in problem.message


def test_overrides_apply_before_validation_and_are_blamed(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    problems = _problems(path, ("network.nodes=ten", "nonsense", "privacy.threshold=11"))
    assert {(p.source, p.key) for p in problems} == {("--set", "network.nodes"), ("--set", "")}
    # cross-field problems about an overridden key are blamed on --set too
    [threshold] = _problems(path, ("privacy.threshold=11",))
    assert str(threshold) == (
        "--set: privacy.threshold: must be at most privacy.keypers (10), got 11"
    )


def test_overrides_change_the_scenario_and_the_run_id(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    base = load_scenario(path)
    changed = load_scenario(path, overrides=["market.fee=0.5", "network.latency_ms.median=80"])
    assert (changed.market.fee, changed.network.latency_ms.median) == (0.5, 80.0)
    assert changed.network.latency_ms.sigma == 0.5  # the rest of the table is kept
    [a], [b] = expand(base), expand(changed)
    assert a.run_id != b.run_id
    assert (a.seed, a.world_seed) == (b.seed, b.world_seed)  # seeds depend on root and point only
    later = load_scenario(path, overrides=["market.fee=0.1", "market.fee=0.5"])
    assert later == changed.model_copy(update={"network": base.network})  # the last one wins


def test_an_override_of_a_swept_key_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + '[sweep]\n"market.fee" = [0.0, 1.0]\n')
    [problem] = _problems(path, ("market.fee=2.0",))
    assert (problem.source, problem.key) == ("--set", "market.fee")
    assert "swept" in problem.message


# --- sweeps and run ids -------------------------------------------------------------------------


def test_sweep_expansion_is_the_cartesian_product_in_written_order(tmp_path: Path) -> None:
    sweep = '[sweep]\n"network.nodes" = [30, 40]\n"market.fee" = [0, 0.5]\n'
    text = MINIMAL + "replications = 2\n" + sweep
    specs = expand(load_scenario(_write(tmp_path, text)))
    got = [(s.point["network.nodes"], s.point["market.fee"], s.replication) for s in specs]
    assert got == [(n, f, r) for n in (30, 40) for f in (0.0, 0.5) for r in (0, 1)]
    for spec in specs:
        assert spec.scenario.sweep == {}
        assert spec.scenario.network.nodes == spec.point["network.nodes"]
        assert spec.scenario.market.fee == spec.point["market.fee"]
        assert type(spec.point["market.fee"]) is float  # normalised: 0 and 0.0 are one point
        assert spec.world_seed == derive_seed(1, "world", spec.replication)
        assert spec.seed == derive_seed(1, "run", canonical_json(spec.point), spec.replication)
    by_rep = {r: {s.world_seed for s in specs if s.replication == r} for r in (0, 1)}
    assert all(len(seeds) == 1 for seeds in by_rep.values()) and by_rep[0] != by_rep[1]
    assert len({s.seed for s in specs}) == len(specs) == 8
    assert len({s.run_id for s in specs}) == 8
    assert [s.run_id.split("-r")[0] for s in specs[::2]] == [
        "nodes-30_fee-0.0",
        "nodes-30_fee-0.5",
        "nodes-40_fee-0.0",
        "nodes-40_fee-0.5",
    ]


def test_run_ids_are_stable_and_follow_the_resolved_scenario(tmp_path: Path) -> None:
    a = _write(tmp_path, MINIMAL + "[market]\nfee = 1\ncount = 4\n", "a.toml")
    b = _write(tmp_path, "# same scenario, written differently\nseed = 1\nname = 't'\n"
               "[market]\ncount = 4\nfee = 1.0\n", "b.toml")  # fmt: skip
    [spec_a], [spec_b] = expand(load_scenario(a)), expand(load_scenario(b))
    assert spec_a.run_id == spec_b.run_id
    assert re.fullmatch(r"base-r0-[0-9a-f]{10}", spec_a.run_id)
    identity = canonical_json({"replication": 0, "scenario": resolved_dict(spec_a.scenario)})
    assert spec_a.run_id.endswith(hashlib.sha256(identity.encode()).hexdigest()[:10])
    [reseeded] = expand(load_scenario(a), seed=99)
    assert reseeded.run_id != spec_a.run_id and reseeded.scenario.seed == 99
    assert reseeded.world_seed == derive_seed(99, "world", 0) != spec_a.world_seed
    assert [s.run_id for s in expand(load_scenario(a))] == [spec_a.run_id]  # reproducible


def test_a_bad_seed_argument_is_a_problem(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, MINIMAL))
    for bad in (-1, 2**63, True):
        with pytest.raises(ScenarioError) as info:
            expand(scenario, seed=bad)
        assert [(p.source, p.key) for p in info.value.problems] == [("--seed", "seed")]


def test_nested_sweep_tables_mean_the_same_as_dotted_keys(tmp_path: Path) -> None:
    dotted = load_scenario(_write(tmp_path, MINIMAL + '[sweep]\n"network.nodes" = [30, 40]\n'))
    nested = load_scenario(_write(tmp_path, MINIMAL + "[sweep.network]\nnodes = [30, 40]\n"))
    assert dotted.sweep == nested.sweep == {"network.nodes": [30, 40]}


def test_point_slugs_are_short_and_safe() -> None:
    assert point_slug({}) == "base"
    assert point_slug({"network.topology": "watts_strogatz"}) == "watts_strogatz"
    assert point_slug({"privacy.unlinkable_senders": True}) == "unlinkable_senders-true"
    long = point_slug({f"market.k{i}": f"Value/{i}!" * 3 for i in range(5)})
    assert len(long) <= 40 and re.fullmatch(r"[a-z0-9_.-]+", long)


SWEEP_BAD = [
    ('"network.nodez" = [1]\n', "sweep.network.nodez", "(did you mean 'network.nodes'?)"),
    ('"traders.signal_accuracy" = [0.6, 0.9]\n', "sweep.traders.signal_accuracy", "was retired"),
    ('"seed" = [1, 2]\n', "sweep.seed", "cannot be swept"),
    ('"replications" = [1, 2]\n', "sweep.replications", "cannot be swept"),
    ('"network" = [1]\n', "sweep.network", "is a section"),
    ('"network.nodes" = []\n', "sweep.network.nodes", "at least 1 item"),
    ('"network.nodes" = 30\n', "sweep.network.nodes", "valid list"),
    ('"network.nodes" = [30, 3.5]\n', "sweep.network.nodes", "3.5: input should be a valid int"),
    ('"network.nodes" = [30, 1]\n', "sweep.network.nodes", "1: input should be greater than"),
    ('"market.fee" = [1, 1.0]\n', "sweep.market.fee", "1.0 is given twice"),
    ('"privacy.keypers" = [5, 10]\n', "sweep.privacy.keypers",
     "point {privacy.keypers=5}: privacy.threshold: must be at most privacy.keypers (5), got 7"),
    ('"network.nodes" = [30]\n[sweep.network]\nnodes = [40]\n', "sweep.network.nodes", "twice"),
    ('"network.nodes" = [30, 40, 50, 60, 70, 80, 90, 100, 110, 120]\n"market.fee" = '
     f"{list(range(1001))}\n", "sweep", "10010 runs"),
]  # fmt: skip


@pytest.mark.parametrize(("sweep", "key", "fragment"), SWEEP_BAD)
def test_bad_sweeps_name_the_swept_key(tmp_path: Path, sweep: str, key: str, fragment: str) -> None:
    problem = _one(_problems(_write(tmp_path, MINIMAL + "[sweep]\n" + sweep)), key)
    assert fragment in problem.message


def test_sweep_points_are_judged_as_a_whole(tmp_path: Path) -> None:
    # keypers 5 breaks threshold 7 of the base, but every point also sets a threshold <= 5
    ok = '[sweep]\n"privacy.keypers" = [5, 10]\n"privacy.threshold" = [3, 5]\n'
    assert len(expand(load_scenario(_write(tmp_path, MINIMAL + ok)))) == 4
    bad = '[sweep]\n"privacy.keypers" = [5, 10]\n"privacy.threshold" = [3, 6]\n'
    [problem] = _problems(_write(tmp_path, MINIMAL + bad))
    assert problem.key == "sweep.privacy.threshold"
    assert problem.message == (
        "point {privacy.keypers=5, privacy.threshold=6}: must be at most privacy.keypers (5), got 6"
    )


def test_many_invalid_points_are_summarised(tmp_path: Path) -> None:
    sweep = '[sweep]\n"privacy.keypers" = [1, 2, 3, 4, 5]\n"privacy.threshold" = [6, 7]\n'
    problems = _problems(_write(tmp_path, MINIMAL + sweep))
    assert len(problems) == 4
    assert str(problems[-1]).endswith("sweep: and 7 more invalid points")


def test_the_run_limit_counts_replications(tmp_path: Path) -> None:
    ok = f'replications = {MAX_RUNS // 2}\n[sweep]\n"market.fee" = [0.0, 1.0]\n'
    assert len(expand(load_scenario(_write(tmp_path, MINIMAL + ok)))) == MAX_RUNS
    too_many = ok.replace("[0.0, 1.0]", "[0.0, 1.0, 2.0]")
    assert "15000 runs" in _one(_problems(_write(tmp_path, MINIMAL + too_many)), "sweep").message
