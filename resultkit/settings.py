"""Settings of a sweep: short names that say what differs, and the default baseline.

A setting is a sweep point: the swept dotted keys and their values (``{"privacy.order_flow":
"threshold", "network.propagation": "dandelion"}``). Readers compare settings, so a setting is
named by what differs between the settings shown, not by every key: ``threshold · dandelion``.
The default baseline of a comparison is each scenario's first setting in sweep order (the first
value of every swept key), the same in ``veilcast compare`` and on the dashboard.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

SEPARATOR = " · "
DEFAULT_NAME = "default"


def value_text(value: Any) -> str:
    """A setting's value as text: strings as they are, anything else as JSON (``0.05``)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def key_name(key: str) -> str:
    """The last segment of a dotted key (``network.loss`` → ``loss``)."""
    return key.rsplit(".", 1)[-1]


def differing_keys(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys whose value is not the same in every point (a key some point lacks differs),
    in order of first appearance."""
    keys = list(dict.fromkeys(k for p in points for k in p))
    return [k for k in keys if len({value_text(p[k]) if k in p else None for p in points}) > 1]


def part(key: str, value: Any) -> str:
    """One key of a name: a string value alone (``threshold``), others with their key
    (``loss=0.1``, ``unlinkable_senders=true``), since a bare number or boolean says nothing."""
    return value if isinstance(value, str) else f"{key_name(key)}={value_text(value)}"


def point_name(point: Mapping[str, Any], keys: Iterable[str] | None = None) -> str:
    """The name of one setting from ``keys`` of its point (default: all), ``default`` if none."""
    chosen = list(point) if keys is None else [k for k in keys if k in point]
    return SEPARATOR.join(part(k, point[k]) for k in chosen) or DEFAULT_NAME


def short_names(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """A name per point from the keys that differ between them; all keys when none differs.

    Distinct points get distinct names whenever their values' texts differ; two points that
    would still read alike (``"1"`` and ``1``) keep their key names to tell them apart.
    """
    keys = differing_keys(points) or None
    names = [point_name(p, keys) for p in points]
    clashes = {n for n in names if names.count(n) > 1}
    distinct = {json.dumps(p, sort_keys=True, default=str) for p in points}
    if clashes and len(distinct) > len(set(names)):
        names = [
            SEPARATOR.join(f"{key_name(k)}={value_text(p[k])}" for k in (keys or p) if k in p)
            or DEFAULT_NAME
            for p in points
        ]
    return names


def first_settings(
    settings: Iterable[tuple[Hashable, Hashable, int | None]],
) -> dict[Hashable, Hashable]:
    """Each scenario's default baseline: its setting with the smallest sweep position.

    Args:
        settings: ``(scenario, setting, position)`` per run or per setting; ``position`` is the
            run's index in the scenario's sweep (``sweep.json``), None when unknown.

    Returns:
        ``scenario → setting``. Unknown positions come last; ties keep the first given.
    """
    best: dict[Hashable, tuple[float, int, Hashable]] = {}
    for index, (scenario, setting, position) in enumerate(settings):
        rank = (float("inf") if position is None else float(position), index, setting)
        if scenario not in best or rank[:2] < best[scenario][:2]:
            best[scenario] = rank
    return {scenario: rank[2] for scenario, rank in best.items()}
