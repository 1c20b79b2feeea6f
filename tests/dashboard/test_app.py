"""Every page run with Streamlit's AppTest against the fixture results folder."""

from __future__ import annotations

import io
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import catalog, queries, ui

from .conftest import APP, FLOWS

PAGES = {
    None: "Runs",
    "market": "Market",
    "privacy": "Privacy",
    "network": "Network",
    "settlement": "Settlement",
    "learning": "Learning",
    "compare": "Compare",
}


def _open(page: str | None = None, *, query: dict[str, Any] | None = None) -> AppTest:
    """Run the app (as ``streamlit run`` would) and switch to ``page``."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    if query:
        at.query_params.update(query)
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _charts(at: AppTest) -> list[dict[str, Any]]:
    """The Vega-Lite specs drawn on the page."""
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def _chart_rows(at: AppTest, index: int) -> list[pl.DataFrame]:
    """The data of chart ``index``: Streamlit ships it beside the spec as Arrow streams."""
    chart = at.get("vega_lite_chart")[index]
    return [pl.read_ipc_stream(io.BytesIO(d.data.data)) for d in chart.proto.datasets]


def _infos(at: AppTest) -> str:
    return " | ".join(str(i.value) for i in at.info)


def _first_run(root: Path) -> tuple[str, dict[str, Any]]:
    """The run a fresh session shows first, and its manifest."""
    rel = queries.default_selection(catalog.discover_runs(root))[0]
    return rel, catalog.read_manifest(root / rel / catalog.MANIFEST)


def _has(root: Path, rel: str, manifest: dict[str, Any], table: str) -> bool:
    return catalog.table_file(root / rel, manifest, table) is not None


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_without_exception(app_argv: Path, page: str | None) -> None:
    at = _open(page)
    assert at.title[0].value == PAGES[page]
    assert at.sidebar.multiselect[0].label == "Runs in view"
    assert len(at.sidebar.multiselect[0].value) == 4  # the sweep's complete runs, not the rest


def test_runs_page_lists_every_run_and_loads_only_complete_ones(app_argv: Path) -> None:
    at = _open()
    table = at.dataframe[1].value
    assert sorted(table["status"]) == ["complete"] * 4 + ["failed", "incomplete"]
    failed = table[table["status"] == "failed"]
    assert "KeyperError" in failed["error"].iloc[0]
    warning = at.warning[0].value
    assert "2 run(s) are failed or incomplete" in warning
    # the fixture's staging folder has no writer holding the folder's lock: it is stale
    assert "KeyperError" in warning and "left half-written by a writer that stopped" in warning
    options = at.sidebar.multiselect[0].options
    assert len(options) == 4  # neither the failed nor the partial run can be put in view


def test_landing_page_shows_metrics_and_price_paths(app_argv: Path) -> None:
    at = _open()
    rel, manifest = _first_run(app_argv)
    metrics = pl.read_parquet(app_argv / rel / "tables" / "metrics.parquet")
    shown = at.dataframe[2].value
    assert len(shown) == metrics.height
    for name, value in metrics.select("metric", "value").iter_rows():
        cell = shown[shown["metric"] == name]["value"].iloc[0]
        assert (cell == "n/a") == (value is None or math.isnan(value)), name
    if _has(app_argv, rel, manifest, "prices"):
        price = _charts(at)[0]
        assert any(layer["mark"].get("strokeDash") for layer in price["layer"])


def test_resolved_scenario_on_demand(app_argv: Path) -> None:
    at = _open()
    assert not at.json
    at.toggle(key="runs_show_scenario").set_value(True).run()
    _rel, manifest = _first_run(app_argv)
    assert json.loads(at.json[0].value)["name"] == manifest["scenario"]["name"]


def test_filter_by_sweep_value_and_put_runs_in_view(app_argv: Path) -> None:
    at = _open()
    at.selectbox[0].set_value("privacy.order_flow").run()
    value = at.selectbox[1].options[0]
    at.selectbox[1].set_value(value).run()
    table = at.dataframe[1].value
    assert len(table) == 2 and set(table["setting"]) == {f"order_flow={value}"}
    next(b for b in at.button if b.label.startswith("Put these")).click().run()
    in_view = at.sidebar.multiselect[0].value
    runs = catalog.discover_runs(app_argv)
    expected = runs.filter(pl.col("setting") == f"order_flow={value}")["path"].to_list()
    assert sorted(in_view) == sorted(expected)


def _names(root: Path) -> list[str]:
    """The settings of the fixture named by what differs: the order-flow modes."""
    complete = catalog.discover_runs(root).filter(pl.col("loadable"))
    return sorted(queries.with_groups(complete)["group"].unique().to_list())


def test_privacy_groups_by_setting(app_argv: Path) -> None:
    at = _open("privacy")
    assert _names(app_argv) == sorted(FLOWS)  # "commit_reveal", not "order_flow=commit_reveal"
    grid = at.dataframe[0].value  # harm first: the fixture has a front-runner
    assert sorted(grid.columns) == sorted(["metric", *FLOWS])
    assert set(grid["metric"]) == {"mev.extracted", "mev.victim_loss"}
    facets = [c for c in _charts(at) if c.get("facet", {}).get("field") == "metric"]
    assert facets, "no small multiples"
    assert all(
        f["spec"]["layer"][0]["encoding"]["color"]["legend"]["labelLimit"] == 0 for f in facets
    )


def test_the_frontier_has_one_labelled_point_per_setting(app_argv: Path) -> None:
    at = _open("privacy")
    specs = _charts(at)
    index = next(
        i
        for i, c in enumerate(specs)
        if "layer" in c and any(layer["mark"].get("type") == "text" for layer in c["layer"])
    )
    # the points' data set holds every setting; the Pareto line's only the optimal ones
    frontier = max(_chart_rows(at, index), key=lambda rows: rows.height)
    assert sorted(frontier["group"].to_list()) == sorted(FLOWS)  # one point each
    assert frontier["pareto"].any()  # at least one setting is Pareto-optimal
    text = next(layer for layer in specs[index]["layer"] if layer["mark"]["type"] == "text")
    assert text["encoding"]["text"]["field"] == "group"
    assert specs[index]["layer"][1]["encoding"]["color"]["legend"]["labelLimit"] == 0


def test_compare_settings_and_single_runs(app_argv: Path) -> None:
    at = _open("compare")
    table = at.dataframe[0].value
    assert set(table["group"]) == set(FLOWS)
    assert (table["difference vs baseline [95% CI]"] == "baseline").sum() == table[
        "metric"
    ].nunique()
    assert at.get("download_button")
    at.radio(key="compare_mode").set_value("runs").run()
    assert table["metric"].nunique() * 4 == len(at.dataframe[0].value)


def test_url_run_paths_outside_the_folder_are_refused(app_argv: Path) -> None:
    bad = ["../../etc", "/etc/passwd", "dash-fixture/../../../x"]
    at = _open("market", query={"run": bad})
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 3 and all("refused" in e for e in errors)
    assert at.sidebar.multiselect[0].value == []
    assert "No complete run is in view" in _infos(at)


def test_url_symlink_out_of_the_folder_is_refused(
    app_argv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "results"
    shutil.copytree(app_argv, root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "dash-fixture" / "sneaky").symlink_to(outside)
    monkeypatch.setattr(sys, "argv", [str(APP), "--results", str(root)])
    at = _open(query={"run": ["dash-fixture/sneaky"]})
    assert "outside the results folder" in at.sidebar.error[0].value


def test_url_failed_run_is_not_loaded_and_complete_run_is(app_argv: Path) -> None:
    runs = catalog.discover_runs(app_argv)
    failed = runs.filter(pl.col("status") == "failed")["path"].item()
    complete = runs.filter(pl.col("loadable"))["path"][1]
    at = _open("market", query={"run": [failed, complete]})
    assert "not a complete run" in at.sidebar.error[0].value
    assert at.sidebar.multiselect[0].value == [complete]
    assert at.query_params["run"] == complete  # the URL keeps the selection shareable


def test_missing_tables_show_messages_not_exceptions(
    app_argv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "results"
    shutil.copytree(app_argv, root)
    gone = ["prices", "orders", "traders", "nodes", "messages", "settlement", "fl_rounds", "fl_roc"]
    gone += ["fl_clients", "fl_client_epsilon"]
    for manifest_path in root.glob("*/*/manifest.json"):
        manifest = json.loads(manifest_path.read_text())
        for name in gone:
            (manifest_path.parent / "tables" / f"{name}.parquet").unlink(missing_ok=True)
            manifest.get("tables", {}).pop(name, None)
        manifest_path.write_text(json.dumps(manifest))
    monkeypatch.setattr(sys, "argv", [str(APP), "--results", str(root)])
    expected = {
        None: ["`prices`"],
        "market": ["`prices`", "`traders`"],
        "privacy": ["no usable `orders` table"],
        "network": ["`nodes`", "`messages`"],
        "settlement": ["`settlement`"],
        "learning": ["`fl_rounds`", "forecaster", "`fl_roc`", "`fl_clients`"],
    }
    for page, phrases in expected.items():
        infos = _infos(_open(page))
        for phrase in phrases:
            assert phrase in infos, (page, phrase, infos)


def test_missing_or_empty_results_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(APP), "--results", str(tmp_path / "nowhere")])
    at = _open()
    assert "does not exist" in at.error[0].value
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(sys, "argv", [str(APP), "--results", str(tmp_path / "empty")])
    at = _open()
    assert "No runs" in _infos(at)
    at = _open("compare")
    assert "no complete run" in _infos(at)


def test_a_page_run_outside_the_app_explains_itself(app_argv: Path) -> None:
    page = Path(APP).parent / "views" / "market.py"
    at = AppTest.from_file(str(page), default_timeout=60).run()
    assert not at.exception
    assert "dashboard/app.py" in at.error[0].value
    assert ui.CONTEXT_KEY not in at.session_state


def _submit_recommend(at: AppTest, limits: str, minimize: list[str]) -> AppTest:
    at.text_area(key="recommend_limits").set_value(limits)
    at.multiselect(key="recommend_minimize").set_value(minimize)
    next(b for b in at.button if b.label == "Recommend").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_recommend_form_ranks_and_explains_what_binds(app_argv: Path) -> None:
    latency = "cost.order_latency_s"
    at = _submit_recommend(_open("compare"), f"{latency}=1e12", ["cost.crypto_ops"])
    ranked = at.dataframe[-1].value
    assert sorted(ranked["setting"]) == sorted(FLOWS) and ranked["Pareto-optimal"].iloc[0]
    at = _submit_recommend(_open("compare"), f"{latency}=-1", [])
    warning = next(w.value for w in at.warning if "No setting meets" in w.value)
    assert latency in warning and "failed by 2 of 2" in warning
    at = _submit_recommend(_open("compare"), "cost.nonsense=1\nfast", [])
    errors = [e.value for e in at.error]
    assert any("unknown metric" in e for e in errors) and any("METRIC=VALUE" in e for e in errors)


def test_compare_page_and_command_line_agree(app_argv: Path) -> None:
    from sim.runs.compare import compare_dirs

    runs = queries.with_groups(catalog.discover_runs(app_argv).filter(pl.col("loadable")))
    metrics = pl.concat(
        [
            pl.read_parquet(app_argv / rel / "tables" / "metrics.parquet").with_columns(
                path=pl.lit(rel)
            )
            for rel in runs["path"]
        ],
        how="diagonal_relaxed",
    ).select("path", "metric", pl.col("value").cast(pl.Float64))
    bases = queries.default_baselines(runs)
    page = queries.compare(metrics, runs.select("path", "group", "world_seed"), bases)
    cli = compare_dirs([app_argv])
    cli_base = set(cli.filter(pl.col("baseline"))["privacy.order_flow"].to_list())
    assert set(bases.values()) == cli_base and len(cli_base) == 1  # one baseline, both views
    assert cli.height == page.height
    for row in cli.iter_rows(named=True):
        mine = page.filter(
            (pl.col("metric") == row["metric"]) & (pl.col("group") == row["privacy.order_flow"])
        ).row(0, named=True)
        assert mine["baseline"] == row["baseline"]
        for a, b in (("mean", "mean"), ("low", "low"), ("diff", "diff"), ("diff_low", "diff_low")):
            x, y = mine[a], row[b]
            assert (x is None or math.isnan(x)) == (y is None or math.isnan(y)), (row, a)
            if x is not None and not math.isnan(x):
                assert x == y, (row["metric"], a)  # the same implementation: the same bits
        assert mine["paired"] == row["paired"]


def test_runs_first_screen_says_what_the_folder_holds(app_argv: Path) -> None:
    at = _open()
    overview = at.dataframe[0].value
    row = overview[overview["scenario"] == "dash-fixture"].iloc[0]
    assert (row["settings"], row["replications"], row["complete"], row["not_complete"]) == (
        2,
        2,
        4,
        2,
    )
    button = next(b for b in at.button if "frontier of the newest sweep" in b.label)
    button.click().run()
    assert not at.exception
    assert at.title[0].value == "Privacy"


def test_learning_page_shows_the_attack_beside_its_dp_bound(app_argv: Path) -> None:
    labels = [m.label for m in _open("learning").metric]
    assert "MIA advantage" in labels and "MIA advantage bound" in labels
    assert labels.index("MIA advantage bound") == labels.index("MIA advantage") + 1


def test_learning_page_draws_each_clients_epsilon_and_who_withdrew(app_argv: Path) -> None:
    at = _open("learning")
    rel, manifest = _first_run(app_argv)
    tables = app_argv / rel / "tables"
    roster = pl.read_parquet(tables / "fl_clients.parquet")
    history = pl.read_parquet(tables / "fl_client_epsilon.parquet")
    specs = _charts(at)
    [index] = [
        i
        for i, spec in enumerate(specs)
        if any(layer.get("mark", {}).get("type") == "tick" for layer in spec.get("layer", []))
    ]
    lines, events = _chart_rows(at, index)
    withdrawn = roster.filter(pl.col("withdrawn_at").is_not_null())
    assert withdrawn.height == 3  # 30 % of 10 clients
    assert sorted(events.filter(pl.col("event") == "withdrew consent").rows()) == sorted(
        (c, r, "withdrew consent") for c, r in withdrawn.select("client", "withdrawn_at").rows()
    )
    # every client's line starts at 0 before any round and ends at its epsilon in fl_clients
    for client, eps in roster.select("client", "epsilon").rows():
        mine = lines.filter(pl.col("client") == client).sort("rounds")
        assert mine["rounds"][0] == 0 and mine["epsilon"][0] == 0.0
        assert mine["epsilon"][-1] == pytest.approx(eps)
    assert lines.height == history.height + roster.height
    captions = " | ".join(c.value for c in at.caption)
    assert "holds against **everyone but the coordinator**" in captions
    assert "3 withdrew consent" in captions and "not erasure" in captions
    assert "no per-client budget" in captions  # fl.clients_exhausted is NaN: no budget set
    assert "Max client epsilon" in [m.label for m in at.metric]
    del manifest


def test_the_market_page_draws_beliefs_and_the_posterior_beside_the_price(app_argv: Path) -> None:
    at = _open("market")
    assert "Does the price aggregate what traders know?" in [h.value for h in at.subheader]
    specs = _charts(at)
    [index] = [
        i
        for i, spec in enumerate(specs)
        if spec.get("encoding", {}).get("strokeDash", {}).get("field") == "series"
    ]
    series = {s for frame in _chart_rows(at, index) for s in frame["series"].to_list()}
    assert series == {"price", "wealth-weighted belief", "full-information posterior"}
