"""Run every run of a scenario: in this process, on a process pool, or as Ray tasks.

Workers write their own run folders (through :mod:`sim.io`), so results never pile up in the
driver's memory. A run that raises is recorded as failed, with its error and traceback in its
manifest, and the sweep goes on. ``resume`` skips runs whose folder is already complete, so an
interrupted sweep loses only the runs in flight.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from sim import io
from sim.errors import InputError
from sim.runner import base_manifest, execute
from sim.scenario import RunSpec, Scenario, expand

Executor = Literal["local", "ray"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one run."""

    run_id: str
    status: Literal["complete", "failed", "skipped"]
    error: str | None = None
    input_error: bool = False


@dataclass(slots=True)
class SweepSummary:
    """Counts and failures of a sweep."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        """Runs that raised."""
        return [o for o in self.outcomes if o.status == "failed"]


def run_one(spec: RunSpec, out: Path) -> Outcome:
    """Run and write one run; a run that raises is written as failed (never as complete)."""
    try:
        result = execute(spec)
    except Exception as exc:  # a failed run must not stop the sweep
        manifest = base_manifest(spec) | {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
        io.write_failed(out, spec.scenario.name, manifest)
        return Outcome(spec.run_id, "failed", str(exc), isinstance(exc, InputError))
    io.write_run(out, spec.scenario.name, result.manifest, result.tables)
    return Outcome(spec.run_id, "complete")


def _local(specs: Sequence[RunSpec], out: Path, workers: int) -> Iterator[Outcome]:
    if workers <= 1:
        for spec in specs:
            yield run_one(spec, out)
        return
    # forkserver: polars keeps a thread pool, and forking a threaded process is unsafe.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
        futures = [pool.submit(run_one, spec, out) for spec in specs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _ray(specs: Sequence[RunSpec], out: Path, address: str | None) -> Iterator[Outcome]:
    try:
        import ray
    except ImportError as exc:
        raise InputError(
            "--executor: ray is not installed; install the cluster extra: "
            "pip install 'veilcast[cluster]'"
        ) from exc
    ray.init(
        address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False
    )
    remote = ray.remote(run_one)
    pending = [remote.remote(spec, out.resolve()) for spec in specs]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        yield ray.get(ready[0])


def _progress(total: int) -> tuple[Callable[[Outcome], None], Callable[[], None]]:
    """A rich progress bar on a terminal; nothing when output is not a terminal."""
    if not sys.stderr.isatty():
        return (lambda _o: None), (lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
    task = progress.add_task("runs", total=total)
    progress.start()
    failed = 0

    def advance(outcome: Outcome) -> None:
        nonlocal failed
        failed += outcome.status == "failed"
        progress.update(task, advance=1, description=f"runs ({failed} failed)")

    return advance, progress.stop


def run_sweep(
    scenario: Scenario,
    *,
    out: Path,
    seed: int | None = None,
    executor: Executor = "local",
    workers: int | None = None,
    resume: bool = False,
    address: str | None = None,
) -> SweepSummary:
    """Run every run of ``scenario``, write them under ``out`` and a ``sweep.json`` summary."""
    specs = expand(scenario, seed=seed)
    summary = SweepSummary()
    todo = []
    for spec in specs:
        if resume and io.is_complete(io.run_dir(out, scenario.name, spec.run_id)):
            summary.outcomes.append(Outcome(spec.run_id, "skipped"))
        else:
            todo.append(spec)
    started = time.perf_counter()
    advance, stop = _progress(len(todo))
    stream = (
        _ray(todo, out, address) if executor == "ray" else _local(todo, out, workers or _cores())
    )
    try:
        for outcome in stream:
            summary.outcomes.append(outcome)
            advance(outcome)
    finally:
        stop()
        _write_summary(out, scenario, specs, summary, time.perf_counter() - started)
    _report(summary)
    return summary


def _cores() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)))


def _write_summary(
    out: Path, scenario: Scenario, specs: Sequence[RunSpec], summary: SweepSummary, wall_s: float
) -> None:
    status = {o.run_id: o for o in summary.outcomes}
    runs: list[dict[str, Any]] = []
    for spec in specs:
        outcome = status.get(spec.run_id)
        runs.append(
            {
                "run_id": spec.run_id,
                "point": spec.point,
                "replication": spec.replication,
                "seed": spec.seed,
                "world_seed": spec.world_seed,
                "status": outcome.status if outcome else "not run",
                "error": outcome.error if outcome else None,
            }
        )
    io.write_json(
        out / scenario.name / "sweep.json",
        {"scenario": scenario.name, "wall_s": wall_s, "runs": runs},
    )


def _report(summary: SweepSummary) -> None:
    inputs = [o for o in summary.failed if o.input_error]
    if inputs and len(inputs) == len(summary.failed):
        raise InputError(inputs[0].error or "bad input")
    for outcome in summary.failed:
        print(f"veilcast: run {outcome.run_id} failed: {outcome.error}", file=sys.stderr)
