"""The results folder is the only place the dashboard reads: escapes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.catalog import table_file
from dashboard.paths import (
    UnsafePathError,
    check_relative,
    parse_results_arg,
    resolve_inside,
    resolve_run,
)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """``root/scen/run-a`` inside, ``outside/secret`` next to it."""
    root = tmp_path / "results"
    (root / "scen" / "run-a" / "tables").mkdir(parents=True)
    (root / "scen" / ".run-b.tmp-1").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.parquet").write_bytes(b"PAR1")
    return root, outside


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--results", "out/r"], "out/r"),
        (["--", "--results", "elsewhere"], "elsewhere"),
        (["--results=eq"], "eq"),
        ([], "results"),
        (["--server.port", "1", "--results", "x"], "x"),
    ],
)
def test_results_argument_is_read_from_the_script_args(argv: list[str], expected: str) -> None:
    assert parse_results_arg(argv) == Path(expected)


@pytest.mark.parametrize(
    "rel",
    [
        "../outside",
        "scen/../../outside",
        "scen/run-a/../../../outside",
        "/etc/passwd",
        "C:/Windows",
        "scen\\run-a",
        "",
        "..",
        "scen/\x00",
    ],
)
def test_escaping_or_malformed_paths_are_refused(tree: tuple[Path, Path], rel: str) -> None:
    root, _ = tree
    with pytest.raises(UnsafePathError, match="refused"):
        resolve_run(root, rel)


def test_absolute_path_to_a_real_run_is_still_refused(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with pytest.raises(UnsafePathError, match="absolute"):
        check_relative(str(root / "scen" / "run-a"))


def test_a_run_inside_resolves_to_its_folder(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert resolve_run(root, "scen/run-a") == (root / "scen" / "run-a").resolve()
    assert resolve_run(root, "./scen//run-a/") == (root / "scen" / "run-a").resolve()


def test_runs_being_written_missing_or_not_a_run_are_refused(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    for rel, reason in [
        ("scen/.run-b.tmp-1", "being written"),
        ("scen/nope", "no such run"),
        ("scen", "<scenario>/<run-id>"),
        ("scen/run-a/tables", "<scenario>/<run-id>"),
    ]:
        with pytest.raises(UnsafePathError, match=reason):
            resolve_run(root, rel)


def test_symlink_pointing_out_of_the_folder_is_refused(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    (root / "scen" / "evil").symlink_to(outside)
    (root / "evil-scenario").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside"):
        resolve_run(root, "scen/evil")
    with pytest.raises(UnsafePathError, match="outside"):
        resolve_inside(root, "evil-scenario/secret.parquet")


def test_symlink_staying_inside_the_folder_is_followed(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "scen" / "alias").symlink_to(root / "scen" / "run-a")
    assert resolve_run(root, "scen/alias") == (root / "scen" / "run-a").resolve()


def test_manifest_table_paths_cannot_leave_the_run(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    run = root / "scen" / "run-a"
    (run / "tables" / "metrics.parquet").write_bytes(b"PAR1")
    manifest = {
        "tables": {
            "metrics": {"path": "tables/metrics.parquet"},
            "up": {"path": "../../../outside/secret.parquet"},
            "abs": {"path": str(outside / "secret.parquet")},
            "odd": {"path": "manifest.json"},
        }
    }
    assert table_file(run, manifest, "metrics") == (run / "tables" / "metrics.parquet").resolve()
    assert table_file(run, manifest, "up") is None
    assert table_file(run, manifest, "abs") is None
    assert table_file(run, manifest, "odd") is None  # only parquet is ever read
    assert table_file(run, manifest, "absent") is None
