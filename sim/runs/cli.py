"""The ``veilcast`` command (also ``python -m sim``): a thin layer over :mod:`sim.api`.

Exit codes (SPEC section 1): 0 success; 2 bad input, one line per problem naming the file and
the dotted key, never a traceback; 1 an internal error or a failed run (a sweep whose every run
failed on bad input, such as a topology that cannot connect, is bad input); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from sim.errors import InputError
from sim.runs import budget
from sim.scenario import ScenarioError, expand, load_scenario
from sim.scenario.problems import capped

if TYPE_CHECKING:
    from sim.runs.sweep import SweepSummary

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one line with exit code 2 (its own convention)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INPUT, f"veilcast: {message}\n")


def _add_run_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("scenario", type=Path)
    cmd.add_argument("--out", type=Path, default=Path("results"))
    cmd.add_argument("--seed", type=int, default=None)
    cmd.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    _add_allow_large(cmd)


def _add_allow_large(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--allow-large",
        action="store_true",
        help="run (or accept) a scenario whose work estimate is beyond the limits",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar of SPEC section 1."""
    parser = _Parser(prog="veilcast", description="privacy-preserving prediction market simulator")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run_options(
        sub.add_parser("run", help="run a scenario (every replication and sweep point)")
    )
    sweep = sub.add_parser("sweep", help="run a scenario's sweep in parallel")
    _add_run_options(sweep)
    sweep.add_argument("--executor", choices=["local", "ray"], default="local")
    sweep.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes (default: every core), or CPUs of a local Ray",
    )
    sweep.add_argument("--address", default=None, help="Ray cluster address (executor ray)")
    sweep.add_argument("--resume", action="store_true", help="skip runs already complete")
    validate = sub.add_parser("validate", help="check scenario files")
    validate.add_argument("scenarios", type=Path, nargs="+")
    _add_allow_large(validate)
    compare = sub.add_parser("compare", help="compare metrics of runs grouped by swept keys")
    compare.add_argument("dirs", type=Path, nargs="+")
    compare.add_argument("--format", choices=["table", "csv", "json"], default="table")
    compare.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the setting differences are taken against (default: the first sweep point)",
    )
    compare.add_argument(
        "--metric", action="append", default=[], metavar="PREFIX", help="metrics to keep"
    )
    rec = sub.add_parser("recommend", help="settings of a sweep that meet every limit, ranked")
    rec.add_argument("dirs", type=Path, nargs="+")
    rec.add_argument(
        "--max",
        dest="limits",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="upper limit on the 95%% interval's upper end",
    )
    rec.add_argument(
        "--minimize", action="append", default=[], metavar="METRIC", help="objective to rank by"
    )
    rec.add_argument("--format", choices=["table", "json"], default="table")
    dash = sub.add_parser("dashboard", help="start the dashboard on 127.0.0.1")
    dash.add_argument("--results", type=Path, default=Path("results"))
    dash.add_argument("--port", type=int, default=8501)
    dash.add_argument(
        "--address", default="127.0.0.1", help="interface to bind (default loopback only)"
    )
    return parser


def _validate(paths: Sequence[Path], *, allow_large: bool) -> int:
    """Check each file as ``run`` would before starting: schema, sweep points, work estimate."""
    failed = False
    for path in paths:
        try:
            scenario = load_scenario(path)
            work = budget.check(expand(scenario), source=str(path), allow_large=allow_large)
        except InputError as exc:
            failed = True
            print("\n".join(exc.lines()), file=sys.stderr)
        else:
            print(f"ok {scenario.name} (heaviest run: {work.describe()})")
    return EXIT_INPUT if failed else EXIT_OK


@contextmanager
def _interrupt_on_signals() -> Iterator[threading.Event]:
    """SIGTERM and SIGINT stop ``run`` and ``sweep``: finished runs kept, ``sweep.json`` says
    ``interrupted``, nothing left half-written. The previous handlers are put back after.

    Each signal raises ``KeyboardInterrupt`` and sets the yielded event: the sweep checks it at
    every tick, so a stop still happens when the exception landed where Python ignores it (a
    ``__del__``), and that swallowed interrupt is not printed as a traceback.
    """
    requested = threading.Event()

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        requested.set()
        raise KeyboardInterrupt

    def quiet(unraisable: sys.UnraisableHookArgs) -> None:
        # an interrupt Python swallowed (in a __del__): the request above acts on it instead
        if unraisable.exc_type is None or not issubclass(unraisable.exc_type, KeyboardInterrupt):
            hook(unraisable)

    hook = sys.unraisablehook
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    sys.unraisablehook = quiet
    try:
        yield requested
    finally:
        sys.unraisablehook = hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace) -> int:
    from sim.runs.sweep import run_sweep

    scenario = load_scenario(args.scenario, overrides=args.overrides)
    with _interrupt_on_signals() as stop:
        summary = run_sweep(
            scenario,
            out=args.out,
            seed=args.seed,
            executor=getattr(args, "executor", "local"),
            workers=args.workers if args.command == "sweep" else 1,
            resume=getattr(args, "resume", False),
            address=getattr(args, "address", None),
            allow_large=args.allow_large,
            source=str(args.scenario),
            stop_requested=stop.is_set,
        )
    failed = summary.failed
    nothing_ran = not summary.complete and not summary.skipped
    if failed and nothing_ran and all(o.input_error for o in failed):
        # every run refused the input (e.g. a topology that cannot connect): a bad scenario
        for error in dict.fromkeys(o.error for o in failed):
            print(capped(f"{args.scenario}: {error}"), file=sys.stderr)
        return EXIT_INPUT
    print("\n".join(_describe(summary, f"{args.command} {scenario.name}")), file=sys.stderr)
    return EXIT_INTERNAL if failed else EXIT_OK


def _describe(summary: SweepSummary, what: str) -> list[str]:
    """The sweep's summary for people: a line of counts, then one line per failed run."""
    lines = [
        f"veilcast: {what}: {len(summary.complete)} complete, "
        f"{len(summary.skipped)} skipped (already complete), {len(summary.failed)} failed, "
        f"{summary.wall_s:.1f} s"
    ]
    return lines + [
        capped(f"veilcast: run {o.run_id} failed: {o.error_type}: {o.error}")
        for o in summary.failed
    ]


def _compare(args: argparse.Namespace) -> int:
    from sim.runs.compare import compare_dirs, render

    baseline: dict[str, str] = {}
    for text in args.baseline:
        key, equals, value = text.partition("=")
        if not equals or not key.strip():
            raise InputError(f"--baseline: expected KEY=VALUE, got {text!r}")
        baseline[key.strip()] = value.strip()
    skipped: list[str] = []
    try:
        frame = compare_dirs(args.dirs, baseline=baseline, metrics=args.metric, skipped=skipped)
    finally:  # the damaged runs are named even when nothing is left to compare
        for line in skipped:
            print(f"veilcast: compare: skipped {capped(line)}", file=sys.stderr)
    print(render(frame, args.format), end="" if args.format == "table" else "\n")
    return EXIT_OK


def _recommend(args: argparse.Namespace) -> int:
    from sim.runs.recommend import recommend_dirs, render

    rec, limits = recommend_dirs(args.dirs, args.limits, args.minimize)
    print(render(rec, limits, args.format), end="" if args.format == "table" else "\n")
    return EXIT_OK


def _dashboard(args: argparse.Namespace) -> int:
    """Replace this process with the Streamlit server (``os.execv``).

    The server then *is* the ``veilcast dashboard`` process: SIGINT or SIGTERM sent to its pid
    stops the server itself, so no server outlives the command (a child would keep the port).
    """
    spec = find_spec("dashboard")
    if spec is None or spec.origin is None:
        print("veilcast: the dashboard package is not installed", file=sys.stderr)
        return EXIT_INTERNAL
    if not 0 < args.port < 65536:
        raise InputError(f"--port: {args.port} is not a TCP port (1-65535)")
    app = Path(spec.origin).parent / "app.py"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        args.address,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--results",
        str(args.results.resolve()),
    ]
    print(f"veilcast dashboard on http://{args.address}:{args.port} (Ctrl-C stops it)", flush=True)
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return EXIT_INTERNAL  # not reached: execv returns only by raising


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``veilcast`` console script."""
    args = build_parser().parse_args(argv)
    try:
        match args.command:
            case "validate":
                return _validate(args.scenarios, allow_large=args.allow_large)
            case "run" | "sweep":
                return _run(args)
            case "compare":
                return _compare(args)
            case "recommend":
                return _recommend(args)
            case "dashboard":
                return _dashboard(args)
    except ScenarioError as exc:
        print("\n".join(str(p) for p in exc.problems), file=sys.stderr)  # each line capped
        return EXIT_INPUT
    except InputError as exc:
        print("\n".join(capped(line) for line in exc.lines()), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(
            "veilcast: interrupted; finished runs are kept, none is left half-written",
            file=sys.stderr,
        )
        return 130
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
