"""Short names of settings and the default baseline."""

from __future__ import annotations

from resultkit.settings import differing_keys, first_settings, point_name, short_names


def test_names_say_only_what_differs_in_sweep_key_order() -> None:
    points = [
        {"privacy.order_flow": "threshold", "network.propagation": "dandelion", "seed": 1},
        {"privacy.order_flow": "transparent", "network.propagation": "dandelion", "seed": 1},
        {"privacy.order_flow": "threshold", "network.propagation": "diffusion", "seed": 1},
    ]
    assert differing_keys(points) == ["privacy.order_flow", "network.propagation"]
    assert short_names(points) == [
        "threshold · dandelion",
        "transparent · dandelion",
        "threshold · diffusion",
    ]


def test_numbers_and_booleans_keep_their_key() -> None:
    points = [{"network.loss": 0.0, "privacy.unlinkable_senders": True}, {"network.loss": 0.1}]
    assert short_names(points) == ["loss=0.0 · unlinkable_senders=true", "loss=0.1"]
    assert point_name({}) == "default" and short_names([{"a": "x"}]) == ["x"]


def test_points_that_would_read_alike_stay_apart() -> None:
    names = short_names([{"k": "1"}, {"k": 1}])
    assert len(set(names)) == 2


def test_the_baseline_is_each_scenarios_first_sweep_position() -> None:
    rows = [("s", "b", 3), ("s", "a", 0), ("t", "x", None), ("t", "y", 2), ("s", "c", 0)]
    assert first_settings(rows) == {"s": "a", "t": "y"}
    assert first_settings([("u", "only", None)]) == {"u": "only"}
