"""Safe resolution of paths inside the results folder.

The dashboard reads only inside the results folder it was started with. Every path that comes
from outside the code (a widget, the URL query, a manifest's table entry) goes through
:func:`resolve_inside`, which refuses absolute paths, ``..`` components and symlinks that lead
out of the folder, so a crafted URL such as ``?run=../../etc`` cannot make the app read
elsewhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

DEFAULT_RESULTS = "results"


class UnsafePathError(ValueError):
    """A requested path is not a plain relative path inside the results folder."""


def parse_results_arg(argv: Sequence[str]) -> Path:
    """The results folder named by ``--results DIR`` in the script's arguments.

    ``streamlit run app.py -- --results DIR`` hands the script ``--results DIR``; a literal
    ``--`` left in ``argv`` is skipped too, and unknown arguments are ignored rather than fatal
    because Streamlit may pass its own.

    Args:
        argv: The script arguments (``sys.argv[1:]``).

    Returns:
        The results folder as given (not resolved); ``results`` when absent.
    """
    args = list(argv)
    if "--" in args:
        args = args[args.index("--") + 1 :]
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("--results", default=DEFAULT_RESULTS)
    known, _unknown = parser.parse_known_args(args)
    return Path(known.results)


def check_relative(rel: str) -> tuple[str, ...]:
    """Split a user-supplied relative path into its parts, refusing anything that could escape.

    Args:
        rel: A path such as ``"quickstart/base-r0-0123456789"``.

    Returns:
        The path components.

    Raises:
        UnsafePathError: For an empty, absolute (POSIX or Windows) or ``..``-containing path, or one
            with a NUL byte or backslash.
    """
    if not rel or "\x00" in rel or "\\" in rel:
        raise UnsafePathError(f"refused path {rel!r}: empty or contains forbidden characters")
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or rel[1:2] == ":":
        raise UnsafePathError(f"refused path {rel!r}: absolute paths are not allowed")
    parts = tuple(part for part in rel.split("/") if part not in ("", "."))
    if not parts or any(part == ".." for part in parts):
        raise UnsafePathError(f"refused path {rel!r}: it leaves the results folder")
    return parts


def resolve_inside(base: Path, rel: str) -> Path:
    """Resolve ``rel`` under ``base`` and refuse it unless the real path stays inside ``base``.

    Symlinks are followed before the check, so a link inside the folder that points out of it
    is refused like ``../``.

    Args:
        base: The folder that must contain the result.
        rel: A relative path from an untrusted source.

    Returns:
        The resolved absolute path (it may not exist).

    Raises:
        UnsafePathError: If the path is malformed, resolves outside ``base`` or cannot be
            resolved (a symlink loop).
    """
    parts = check_relative(rel)
    try:
        real_base = base.resolve()
        target = real_base.joinpath(*parts).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        # The reason without the server path the exception names.
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a symlink loop"
        raise UnsafePathError(f"refused path {rel!r}: it cannot be resolved ({why})") from None
    if not target.is_relative_to(real_base):
        raise UnsafePathError(f"refused path {rel!r}: it resolves outside the results folder")
    return target


def resolve_run(root: Path, rel: str) -> Path:
    """The folder of run ``scenario/run-id`` inside the results folder ``root``.

    Args:
        root: The results folder.
        rel: ``"<scenario>/<run-id>"``; temporary folders (names starting with a dot) are refused
            because they are runs still being written.

    Returns:
        The resolved run folder, which exists and is a directory.

    Raises:
        UnsafePathError: If ``rel`` is malformed, escapes ``root``, names a temporary folder or does
            not exist.
    """
    parts = check_relative(rel)
    if len(parts) != 2:
        raise UnsafePathError(f"refused path {rel!r}: a run is '<scenario>/<run-id>'")
    if any(part.startswith(".") for part in parts):
        raise UnsafePathError(f"refused path {rel!r}: a run still being written is not loadable")
    target = resolve_inside(root, rel)
    if not target.is_dir():
        raise UnsafePathError(f"refused path {rel!r}: no such run")
    return target
