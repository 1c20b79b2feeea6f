"""Problems with a scenario and the text they come from: one-line problems, TOML, dotted keys.

The bottom of the scenario package: nothing here knows the schema.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import InputError


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: where (a file or ``--set``), which dotted key, what.

    ``key`` is empty for whole-file problems (unreadable, not TOML, empty).
    """

    source: str
    key: str
    message: str

    def __str__(self) -> str:
        parts = (self.source, self.key, self.message) if self.key else (self.source, self.message)
        return capped(one_line(": ".join(parts)))


class ScenarioError(InputError):
    """The scenario cannot be used; ``problems`` lists every reason found, one line each."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        """One line per problem: ``<file>: <dotted.key>: <message>``."""
        return [str(p) for p in self.problems]


MAX_LINE = 400
"""Longest problem line printed: a 500 KB value or path is cut, never printed whole."""


def capped(text: str, limit: int = MAX_LINE) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text) - limit + 30} more characters)"


def one_line(text: str) -> str:
    """``text`` with every line break and control character escaped (``\\n``, ``\\x00``...)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def show(value: object) -> str:
    """A short one-line rendering of a user's value, in TOML spelling where possible."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        bits = value.bit_length()
        text = str(value) if bits < 128 else f"an integer of {bits} bits"
    elif isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, Mapping):
        text = "a table"
    elif isinstance(value, list | tuple):
        text = "an array"
    else:
        text = f"a {type(value).__name__}"
    return one_line(text if len(text) <= 60 else text[:57] + "...")


MAX_FILE_BYTES = 1_000_000
"""A scenario is a few kilobytes; a bigger file is almost surely the wrong file."""


class NotRegularError(OSError):
    """A path that is not a regular file (a FIFO, a device, a socket, a folder)."""


class TooLargeError(OSError):
    """A file larger than its reader's cap."""


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``.

    Opened without blocking and checked with ``fstat`` on the open descriptor, so a FIFO never
    hangs the reader (opening one for reading blocks until a writer comes), a device such as
    ``/dev/zero`` (also behind a symlink) is never read until memory runs out, and a file that
    grows while being read is still cut at ``max_bytes + 1``.

    Raises:
        NotRegularError: not a regular file (``is a directory``, ``a FIFO`` ...).
        TooLargeError: larger than ``max_bytes``.
        OSError: missing, unreadable; ValueError: a NUL in the path.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularError(errno.EINVAL, f"not a regular file ({_kind(mode)})")
        chunks: list[bytes] = []
        left = max_bytes + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > max_bytes:
        raise TooLargeError(errno.EFBIG, f"larger than {max_bytes} bytes")
    return raw


def _kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a device",
             stat.S_ISBLK: "a device", stat.S_ISSOCK: "a socket"}  # fmt: skip
    return next((text for test, text in kinds.items() if test(mode)), "a special file")


def read_toml(path: Path, *, source: str) -> dict[str, Any]:
    """The table in a TOML file; any failure is a whole-file problem (empty key).

    Raises:
        ScenarioError: the file is missing, not a regular file (a folder, FIFO or device),
            unreadable, too big, not UTF-8, not TOML, or empty.
    """
    try:
        raw = read_regular(path, MAX_FILE_BYTES)
    except TooLargeError:
        reason = f"cannot read: larger than {MAX_FILE_BYTES} bytes, not a scenario file"
        raise ScenarioError([Problem(source, "", reason)]) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ScenarioError([Problem(source, "", f"cannot read: {_os_reason(exc)}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        reason = f"cannot read: not a UTF-8 text file (bad byte at offset {exc.start})"
        raise ScenarioError([Problem(source, "", reason)]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([Problem(source, "", f"invalid TOML: {exc}")]) from None
    except (ValueError, RecursionError) as exc:  # an integer of 4300+ digits; deep nesting
        text = "a number is too long" if isinstance(exc, ValueError) else "nested too deeply"
        raise ScenarioError([Problem(source, "", f"invalid TOML: {text}")]) from None
    if not data:
        reason = "the file is empty; a scenario needs at least name and seed"
        raise ScenarioError([Problem(source, "", reason)])
    return data


def _os_reason(exc: OSError | ValueError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, NotRegularError):
        return str(exc.strerror)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def toml_value(raw: str) -> Any:
    if "\n" in raw or "\r" in raw:  # one value only: no way to smuggle in a second key
        return raw
    try:
        parsed = tomllib.loads(f"v = {raw}")
    except (ValueError, RecursionError):
        return raw
    return parsed["v"] if parsed.keys() == {"v"} else raw


def flatten_table(table: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Nested tables -> dotted keys, in written order; also the keys that came out twice.

    Iterative, so a pathologically deep table cannot exhaust the stack.
    """
    flat: dict[str, Any] = {}
    twice: list[str] = []
    stack = [(str(key), value) for key, value in reversed(list(table.items()))]
    while stack:
        key, value = stack.pop()
        if isinstance(value, Mapping) and value:
            stack += [(f"{key}.{k}", v) for k, v in reversed(list(value.items()))]
        elif key in flat:
            twice.append(key)
        else:
            flat[key] = value
    return flat, twice


def get_dotted(data: Mapping[str, Any], key: str) -> Any:
    """``data["network"]["nodes"]`` for ``key = "network.nodes"``."""
    node: Any = data
    for part in key.split("."):
        node = node[part]
    return node


def set_dotted(data: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``key`` set to ``value``; only the tables on the path are copied.

    Missing tables on the path are created; a non-table in the way is left alone (and ``value``
    dropped), so validation reports the original problem.
    """
    root = dict(data)
    node = root
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.get(part, {})
        if not isinstance(child, Mapping):
            return root
        copy = dict(child)
        node[part] = copy
        node = copy
    node[leaf] = value
    return root
