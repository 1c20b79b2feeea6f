"""End to end: the real dashboard server driven by Debian's Chromium through playwright.

Starts ``veilcast dashboard`` (``python -m sim dashboard``; plain ``streamlit run`` when the CLI
cannot) on a free loopback port against the fixture folder, opens every page and checks that
charts rendered and no exception is shown. On the Privacy page it checks the privacy–cost
frontier: one labelled point per setting, and no legend label cut short. Saves a screenshot of
the Privacy page to ``test-artifacts/privacy.png`` and of the frontier to
``test-artifacts/frontier.png``; the README's walkthrough image ``docs/images/frontier.png`` is
copied from it by hand when the chart changes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from dashboard import catalog, queries

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
FRONTIER_IMAGE = ARTIFACTS / "frontier.png"
"""The frontier chart as the browser drew it; ``docs/images/frontier.png`` (the README's) is
refreshed from it by hand, so that running the tests never edits a tracked file."""
# The frontier chart's SVG texts: the point labels (Vega's text marks) and every text (axes,
# legends); Vega writes a label it cut with a trailing ellipsis.
FRONTIER_TEXTS = """() => {
  const embeds = [...document.querySelectorAll('.vega-embed')];
  const chart = embeds.find(e => [...e.querySelectorAll('text')].some(
      t => t.textContent === 'order flow'));
  if (!chart) return null;
  const text = sel => [...chart.querySelectorAll(sel)].map(t => t.textContent);
  return {marks: text('g.mark-text.role-mark text'), all: text('text')};
}"""
# (url path, title, whether the page must show at least one chart)
# A deep link comes first: on a fresh server it must still run inside app.py.
PAGES = [
    ("market", "Market", True),
    ("", "Runs", True),
    ("privacy", "Privacy", True),
    ("network", "Network", True),
    ("settlement", "Settlement", True),
    ("learning", "Learning", None),  # a chart only when the first run in view has fl_rounds
    ("compare", "Compare", False),
]

pytestmark = pytest.mark.browser


def _chromium() -> Path:
    """Debian's Chromium, or skip (fail under CI) when it is not installed."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = "install Debian's chromium (apt-get install chromium) to run the browser test"
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing under CI: {message}")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(results: Path, port: int) -> list[str]:
    """``veilcast dashboard`` when the CLI offers it, else the same streamlit command it runs."""
    try:
        from sim.runs.cli import build_parser

        build_parser().parse_args(["dashboard", "--results", str(results), "--port", str(port)])
        return [
            sys.executable,
            "-m",
            "sim",
            "dashboard",
            "--results",
            str(results),
            "--port",
            str(port),
        ]
    except (ImportError, SystemExit):
        app = REPO / "dashboard" / "app.py"
        return [
            sys.executable, "-m", "streamlit", "run", str(app),
            "--server.address", "127.0.0.1", "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--", "--results", str(results),
        ]  # fmt: skip


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"dashboard did not answer on {url} within {timeout} s")


@pytest.fixture(scope="module")
def server(results_root: Path) -> Iterator[str]:
    """The dashboard on a free loopback port; stopped (its whole process group) afterwards."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen(
        _command(results_root, port),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the CLI starts streamlit as a child: stop both together
    )
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _settle(page: object, *, charts: bool) -> None:
    """Wait for the script run to finish and, where expected, for a chart to be drawn."""
    page.wait_for_selector("h1", timeout=60_000)  # type: ignore[attr-defined]
    if charts:
        page.wait_for_selector(".vega-embed canvas, .vega-embed svg", timeout=60_000)  # type: ignore[attr-defined]
    # The status widget shows "Running..." while the script runs.
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )
    page.wait_for_timeout(800)  # type: ignore[attr-defined]


def _screenshot(page: object, target: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to fit."""
    height = page.evaluate(  # type: ignore[attr-defined]
        "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
    )
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 6000)})  # type: ignore[attr-defined]
    page.wait_for_timeout(1500)  # type: ignore[attr-defined]
    page.screenshot(path=str(target), full_page=True)  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1400, "height": 1000})  # type: ignore[attr-defined]


def _first_run_has(results: Path, table: str) -> bool:
    """Whether the run a fresh session shows first has rows in ``table`` (Learning's chart)."""
    runs = catalog.discover_runs(results)
    first = queries.default_selection(runs)[0]
    manifest = catalog.read_manifest(results / first / catalog.MANIFEST)
    path = catalog.table_file(results / first, manifest, table)
    return path is not None and pl.scan_parquet(path).select(pl.len()).collect().item() > 0


def _check_frontier(page: object, results: Path) -> None:
    """The frontier draws one label per setting, and no text of it is cut ("…")."""
    complete = catalog.discover_runs(results).filter(pl.col("loadable"))
    settings = set(queries.with_groups(complete)["group"].to_list())
    texts = page.evaluate(FRONTIER_TEXTS)  # type: ignore[attr-defined]
    assert texts is not None, "no frontier chart (SVG) on the Privacy page"
    assert sorted(texts["marks"]) == sorted(settings), texts  # one labelled point each
    assert not [t for t in texts["all"] if t.endswith("…")], texts
    chart = page.locator(".vega-embed").filter(has_text="order flow").first  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    chart.screenshot(path=str(FRONTIER_IMAGE))


def test_every_page_renders_in_chromium(server: str, results_root: Path) -> None:
    chromium = _chromium()
    learning_chart = _first_run_has(results_root, "fl_rounds")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path, title, expected in PAGES:
                charts = learning_chart if expected is None else expected
                page.goto(f"{server}/{path}")
                try:
                    _settle(page, charts=charts)
                except sync_api.Error as exc:
                    raise AssertionError(f"{title} page did not finish rendering: {exc}") from exc
                assert page.locator("h1").first.inner_text().strip() == title
                assert page.locator('[data-testid="stException"]').count() == 0, title
                drawn = page.locator(".vega-embed canvas, .vega-embed svg").count()
                assert drawn >= (1 if charts else 0), f"{title}: no chart drawn"
                if path == "privacy":
                    _check_frontier(page, results_root)
                    _screenshot(page, ARTIFACTS / "privacy.png")
        finally:
            browser.close()
    assert (ARTIFACTS / "privacy.png").stat().st_size > 10_000
    assert FRONTIER_IMAGE.stat().st_size > 5_000
