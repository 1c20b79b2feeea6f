"""Run every run of a scenario: in this process, on a process pool, or as Ray tasks.

Run ids and seeds come from :func:`sim.scenario.expand` in the driver, so they are the same
whatever the executor or the order in which runs finish. Workers write their own run folders
(through :mod:`sim.results.io`, atomically), so results never pile up in the driver's memory: what
travels back is an :class:`Outcome` of a few fields.

Faults, and what each one costs:

* a run that raises is written as failed, with its error and traceback, and the sweep goes on;
* a worker process that dies (killed, out of memory) loses the runs it had in flight: they are
  recorded as failed and the sweep goes on with a fresh pool;
* Ctrl-C stops the sweep: queued runs are cancelled, runs in flight are abandoned (never left
  looking complete), ``sweep.json`` records the state and :class:`KeyboardInterrupt`
  propagates. ``resume=True`` skips every run whose folder is complete, so a rerun redoes only
  what was lost.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.util import find_spec
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from sim.errors import InputError
from sim.results import io
from sim.runs import budget
from sim.runs.runner import base_manifest, execute
from sim.scenario import RunSpec, Scenario, expand
from sim.scenario.problems import one_line

Executor = Literal["local", "ray"]
Status = Literal["complete", "failed", "skipped"]

LOST = "WorkerLost"
"""``error_type`` of a run whose worker process died while running it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one run: all a worker sends back to the driver.

    ``skipped`` means complete on disk before a resumed sweep started. A failed run has its
    exception's message (one line) and class name (:data:`LOST` when its worker died), and
    ``input_error`` when the input was at fault (a topology that cannot connect). ``wall_s`` is
    the worker's time to build, run and write it (None when it did not run).
    """

    run_id: str
    status: Status
    error: str | None = None
    error_type: str | None = None
    input_error: bool = False
    wall_s: float | None = None


@dataclass(frozen=True, slots=True)
class SweepSummary:
    """The outcome of every run a sweep reached, in the order they finished."""

    outcomes: tuple[Outcome, ...]
    wall_s: float

    def having(self, status: Status) -> list[Outcome]:
        """The outcomes of that status."""
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[Outcome]:
        """Runs that raised or whose worker died."""
        return self.having("failed")

    @property
    def complete(self) -> list[Outcome]:
        """Runs this sweep completed."""
        return self.having("complete")

    @property
    def skipped(self) -> list[Outcome]:
        """Runs that were complete before this (resumed) sweep started."""
        return self.having("skipped")


@dataclass(frozen=True, slots=True)
class Tick:
    """What an executor reports: a finished run (or None), and how many runs are in flight."""

    outcome: Outcome | None
    running: int


UNWRITABLE = "OutputError"
"""``error_type`` of a run whose folder could not be written (a full disk, a lost mount)."""


def run_one(spec: RunSpec, out: Path) -> Outcome:
    """Run and write one run; a run that raises is written as failed (never as complete).

    A run whose folder cannot be written (``OSError``: the disk filled up mid-write) fails
    as bad input (the ``--out`` the user gave), with nothing complete-looking left behind.
    """
    started = time.perf_counter()
    try:
        result = execute(spec)
    except Exception as exc:  # a failed run must not stop the sweep
        manifest = base_manifest(spec) | {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
        if not _record(out, spec, manifest):
            return Outcome(spec.run_id, "complete", wall_s=time.perf_counter() - started)
        bad_input, wall_s = isinstance(exc, InputError), time.perf_counter() - started
        return Outcome(
            spec.run_id, "failed", one_line(str(exc)), type(exc).__name__, bad_input, wall_s
        )
    try:
        io.write_run(out, spec.scenario.name, result.manifest, result.tables)
    except OSError as exc:
        return _unwritable(spec, out, exc, time.perf_counter() - started)
    return Outcome(spec.run_id, "complete", wall_s=time.perf_counter() - started)


def _unwritable(spec: RunSpec, out: Path, exc: OSError, wall_s: float | None) -> Outcome:
    error = f"--out: cannot write {io.run_dir(out, spec.scenario.name, spec.run_id)}: {exc}"
    manifest = base_manifest(spec) | {"error": f"{UNWRITABLE}: {error}", "traceback": None}
    _record(out, spec, manifest)  # may fail too (the disk is still full): then nothing is left
    return Outcome(spec.run_id, "failed", one_line(error), UNWRITABLE, True, wall_s)


def _record(out: Path, spec: RunSpec, manifest: dict[str, Any]) -> bool:
    """Write a failure record; False when the folder already holds a complete run (another
    writer finished it), which a failure never replaces. A write that fails is not fatal: the
    failure is still reported by the outcome."""
    try:
        io.write_failed(out, spec.scenario.name, manifest)
    except OSError:
        return True
    return _disk_status(out, spec) != "complete"


def record_failure(spec: RunSpec, out: Path, error_type: str, error: str) -> Outcome:
    """Write a failed manifest for a run that failed outside :func:`run_one`'s own guard (its
    worker died, or writing its folder raised), so the failure is visible on disk too; a run
    complete on disk stays complete."""
    manifest = base_manifest(spec) | {"error": f"{error_type}: {error}", "traceback": None}
    if not _record(out, spec, manifest):
        return Outcome(spec.run_id, "complete")
    return Outcome(spec.run_id, "failed", error=one_line(error), error_type=error_type)


def record_lost(spec: RunSpec, out: Path, reason: str) -> Outcome:
    """Record a run whose worker process died while running it, unless its folder is complete
    (it finished, but its outcome was lost with the pool): that folder is never overwritten."""
    if _disk_status(out, spec) == "complete":
        return Outcome(spec.run_id, "complete")
    error = f"the worker process running it died ({reason}); rerun with --resume"
    return record_failure(spec, out, LOST, error)


# --- the local executor -------------------------------------------------------------------------


ORPHAN_CHECK_S = 1.0
"""How often a pool worker checks that its driver is alive."""


def _worker_init(driver: int) -> None:
    # Ctrl-C reaches every process of the terminal's process group. An idle worker ignores it
    # (the driver shuts the pool down); a busy one stops its run (see _run_in_worker).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(driver,), daemon=True, name="orphan-check").start()


def _exit_with(driver: int) -> None:
    """End this worker within :data:`ORPHAN_CHECK_S` of its driver's death (even by SIGKILL,
    which no cleanup sees); its unfinished run leaves only a staging folder, cleared later."""
    parent = os.getppid()  # the forkserver, which ends with the driver
    while _alive(driver) and os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(1)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed driver its shell has not reaped yet)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat_line.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _run_in_worker(spec: RunSpec, out: Path) -> Outcome:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run_one(spec, out)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _serial(specs: Sequence[RunSpec], out: Path) -> Generator[Tick, None, None]:
    for spec in specs:
        yield Tick(None, 1)
        yield Tick(run_one(spec, out), 0)


def _local(specs: Sequence[RunSpec], out: Path, workers: int) -> Generator[Tick, None, None]:
    """Runs on a pool of ``workers`` processes; a pool broken by a dying worker is replaced."""
    if workers <= 1 or len(specs) <= 1:
        yield from _serial(specs, out)
        return
    queue = deque(specs)
    # forkserver: polars keeps a thread pool, and forking a threaded process is unsafe.
    context = get_context("forkserver")
    while queue:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),)
        ) as pool:
            yield from _drain(pool, queue, out, workers)


def _drain(
    pool: ProcessPoolExecutor, queue: deque[RunSpec], out: Path, workers: int
) -> Generator[Tick, None, None]:
    """Feed ``pool`` at most ``workers`` runs at a time (so every submitted run is running);
    return when the queue is empty or the pool broke."""
    inflight: dict[Future[Outcome], RunSpec] = {}
    try:
        while queue or inflight:
            while queue and len(inflight) < workers:
                spec = queue.popleft()
                inflight[pool.submit(_run_in_worker, spec, out)] = spec
            yield Tick(None, len(inflight))
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                spec = inflight.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    # A worker died and the pool stopped: every run still in flight is lost.
                    for item in [spec, *inflight.values()]:
                        yield Tick(record_lost(item, out, "process pool broken"), 0)
                    return
                except Exception as exc:  # raised outside the run's own guard (e.g. writing)
                    outcome = record_failure(spec, out, type(exc).__name__, str(exc))
                yield Tick(outcome, len(inflight))
    except BaseException:
        # Wait for the runs in flight (interrupted by the same Ctrl-C, they stop at once), so
        # that sweep.json, written next, sees every folder they finished.
        pool.shutdown(wait=True, cancel_futures=True)
        raise


# --- the Ray executor ---------------------------------------------------------------------------


def _ray_init(address: str | None, workers: int | None) -> tuple[Any, bool]:
    """Ray, connected to the cluster at ``address`` or to a local Ray started now (then True)."""
    import ray

    if ray.is_initialized():
        return ray, False
    # Quiet: the sweep's own progress and summary are what the user reads.
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    options["logging_level"] = logging.ERROR
    if address is None:
        # A local Ray for this sweep: results travel through files, so a small object store.
        options |= {"num_cpus": workers, "object_store_memory": 128 * 1024 * 1024}
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise InputError(f"--address: cannot connect to Ray at {address!r}: {exc}") from exc
    return ray, True


def _ray(
    specs: Sequence[RunSpec], out: Path, address: str | None, workers: int | None
) -> Generator[Tick, None, None]:
    """Each run a Ray task; the folder is written by the task, so ``out`` must be shared."""
    ray, started = _ray_init(address, workers)
    inflight: dict[Any, RunSpec] = {}
    try:
        task = ray.remote(num_cpus=1)(run_one)
        capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue, target = deque(specs), out.resolve()
        while queue or inflight:
            while queue and len(inflight) < 2 * capacity:  # keep every CPU fed, not flooded
                spec = queue.popleft()
                inflight[task.remote(spec, target)] = spec
            yield Tick(None, min(len(inflight), capacity))
            ready, _ = ray.wait(list(inflight), num_returns=1)
            spec = inflight.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:  # raised outside the run's own guard
                outcome = record_failure(spec, out, type(exc.cause).__name__, str(exc.cause))
            except ray.exceptions.RayError as exc:  # the task's worker or node died
                outcome = record_lost(spec, out, type(exc).__name__)
            yield Tick(outcome, min(len(inflight), capacity))
    except BaseException:
        for ref in inflight:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()


# --- progress -----------------------------------------------------------------------------------


def _progress(total: int, console: Console) -> tuple[Callable[[Tick], None], Callable[[], None]]:
    """A rich progress bar (done, failed, running, time left) on a terminal; else nothing."""
    if not console.is_terminal or total == 0:
        return (lambda _tick: None), (lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "sweep",
        BarColumn(),
        MofNCompleteColumn(),
        "[progress.description]{task.description}",
        TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task("done, failed 0, running 0", total=total)
    progress.start()
    failed = 0

    def update(tick: Tick) -> None:
        nonlocal failed
        if tick.outcome is not None:
            failed += tick.outcome.status == "failed"
        progress.update(
            task,
            advance=tick.outcome is not None,
            description=f"done, failed {failed}, running {tick.running}",
        )

    return update, progress.stop


# --- the sweep ----------------------------------------------------------------------------------


def run_sweep(
    scenario: Scenario,
    *,
    out: Path,
    seed: int | None = None,
    executor: Executor = "local",
    workers: int | None = None,
    resume: bool = False,
    address: str | None = None,
    console: Console | None = None,
    allow_large: bool = False,
    source: str | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> SweepSummary:
    """Run every run of ``scenario``, write them under ``out`` and a ``sweep.json`` beside them.

    Args:
        scenario: a validated scenario (its ``[sweep]`` and ``replications`` make the runs).
        out: the results root; runs go to ``out/<scenario-name>/<run-id>/``. With Ray, a path
            every node of the cluster can write.
        seed: the root seed instead of the scenario's (the CLI's ``--seed``).
        executor: ``local`` (a process pool; in this process when ``workers`` is 1) or ``ray``.
        workers: processes of the local pool (default: the cores this process may use), or the
            CPUs of a local Ray started for the sweep (ignored when joining a cluster).
        resume: skip runs whose folder already holds a complete manifest.
        address: the Ray cluster to join (``auto``, ``ray://host:port``); None: a local Ray.
        console: where the progress bar goes (default: standard error; none if not a terminal).
        allow_large: run even when the work estimate (:mod:`sim.runs.budget`) is beyond its
            limits (the CLI's ``--allow-large``).
        source: what to name in a refusal (the scenario file); default the scenario's name.
        stop_requested: asked at every tick; True stops the sweep as Ctrl-C does. A signal
            handler's ``KeyboardInterrupt`` can be swallowed (raised inside a ``__del__``,
            where Python ignores exceptions); the request it also sets is not.

    Raises:
        InputError: ``workers`` below 1, ``address`` without Ray, Ray missing or
            unreachable, ``out`` unusable, or a run beyond the work limits.
        KeyboardInterrupt: the sweep was interrupted; ``sweep.json`` says what is complete.
    """
    if workers is not None and workers < 1:
        raise InputError(f"--workers: must be at least 1, got {workers}")
    if address is not None and executor != "ray":
        raise InputError("--address: a Ray cluster address needs --executor ray")
    if executor == "ray" and find_spec("ray") is None:
        message = "ray is not installed; install the cluster extra: pip install 'veilcast[cluster]'"
        raise InputError(f"--executor: {message}")
    specs = expand(scenario, seed=seed)
    budget.check(specs, source=source or scenario.name, allow_large=allow_large)
    check_out(out, scenario.name)
    done = {s.run_id for s in specs if resume and _disk_status(out, s) == "complete"}
    todo = [s for s in specs if s.run_id not in done]
    outcomes = [Outcome(s.run_id, "skipped") for s in specs if s.run_id in done]
    meta = {
        "scenario": scenario.name,
        "root_seed": specs[0].scenario.seed,
        "swept_keys": list(scenario.sweep),
        "executor": executor,
        "workers": workers,
        "address": address,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    clock = time.perf_counter()
    _write_summary(out, scenario, specs, outcomes, meta | {"state": "running", "wall_s": 0.0})
    ticks = (
        _ray(todo, out, address, workers)
        if executor == "ray"
        else _local(todo, out, min(workers or len(os.sched_getaffinity(0)), max(1, len(todo))))
    )
    update, stop = _progress(len(todo), console or Console(stderr=True))
    state = "aborted"  # by an error, which propagates
    try:
        for tick in ticks:
            update(tick)
            if tick.outcome is not None:
                outcomes.append(tick.outcome)
            if stop_requested():
                raise KeyboardInterrupt
        if stop_requested():
            raise KeyboardInterrupt
        state = "finished"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    finally:
        ticks.close()  # an interrupted executor cancels its queue and stops its workers now
        stop()
        wall_s = time.perf_counter() - clock
        _write_summary(out, scenario, specs, outcomes, meta | {"state": state, "wall_s": wall_s})
    return SweepSummary(tuple(outcomes), wall_s)


def _disk_status(out: Path, spec: RunSpec) -> str | None:
    """The status in a run's manifest on disk (``complete``, ``failed``), None without one."""
    try:
        status = io.read_manifest(io.run_dir(out, spec.scenario.name, spec.run_id)).get("status")
    except io.UnreadableError:
        return None
    return status if status in ("complete", "failed") else None


def check_out(out: Path, scenario_name: str) -> None:
    """Refuse an ``--out`` that cannot hold results before any run starts.

    Creates ``out/<scenario>`` and a file in it, so a file or ``/dev/null`` given as ``--out``,
    a read-only or unwritable folder, or a full disk is one line of bad input.

    Raises:
        InputError: ``--out`` cannot be written.
    """
    folder = out / scenario_name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"veilcast")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"--out: cannot write results in {folder}: {reason.lower()}") from None


def _write_summary(
    out: Path,
    scenario: Scenario,
    specs: Sequence[RunSpec],
    outcomes: Sequence[Outcome],
    meta: dict[str, Any],
) -> None:
    """``sweep.json``: every run in expansion order with its seeds and status.

    A run this sweep did not finish (interrupted) gets the status on disk, or ``not run``.
    """
    known = {o.run_id: o for o in outcomes}
    empty = Outcome("", "skipped")
    runs: list[dict[str, Any]] = [
        {
            "run_id": spec.run_id,
            "point": spec.point,
            "replication": spec.replication,
            "seed": spec.seed,
            "world_seed": spec.world_seed,
            "status": known[spec.run_id].status
            if spec.run_id in known
            else _disk_status(out, spec) or "not run",
            "error": known.get(spec.run_id, empty).error,
            "wall_s": known.get(spec.run_id, empty).wall_s,
        }
        for spec in specs
    ]
    ours = {r["run_id"] for r in runs}

    def merged(current: Any) -> dict[str, Any]:
        # Runs of other variants of this scenario name (another --set) stay listed while their
        # folders exist: one sweep.json per scenario folder, never last-writer-wins.
        others = _other_runs(out, scenario.name, current, ours)
        every = runs + others
        kinds = ("complete", "skipped", "failed")
        counts = {s: sum(r["status"] == s for r in every) for s in kinds}
        counts["not run"] = len(every) - sum(counts.values())
        return meta | {"counts": counts, "runs": every}

    io.update_json(out / scenario.name / "sweep.json", merged)


def _other_runs(out: Path, name: str, current: Any, ours: set[str]) -> list[dict[str, Any]]:
    """The entries of an existing ``sweep.json`` that are not this sweep's and still have a
    folder, with the status on disk now."""
    listed = current.get("runs") if isinstance(current, dict) else None
    if not isinstance(listed, list):
        return []
    kept = []
    for entry in listed:
        run_id = entry.get("run_id") if isinstance(entry, dict) else None
        if not isinstance(run_id, str) or run_id in ours or "/" in run_id or run_id[:1] in ".":
            continue
        try:
            status = io.read_manifest(io.run_dir(out, name, run_id)).get("status")
        except io.UnreadableError:
            continue
        if status in ("complete", "failed"):
            kept.append(entry | {"status": status})
    return kept
