"""The federated code's settings are the scenario's ``[forecaster]`` block, field for field."""

from __future__ import annotations

import dataclasses

from sim.federated.process import fl_config
from sim.federated.strategy import FLConfig
from sim.scenario import Forecaster

ONLY_INTERNAL: set[str] = set()
"""Settings the federated code has that the scenario file does not (yet) offer."""


def test_every_scenario_setting_reaches_the_federated_code_with_the_same_default() -> None:
    internal = {f.name: f.default for f in dataclasses.fields(FLConfig)}
    scenario = {name: field.default for name, field in Forecaster.model_fields.items()}
    assert set(internal) - set(scenario) == ONLY_INTERNAL
    assert set(scenario) <= set(internal)
    # enabled: a scenario trains no forecaster unless asked; code that builds an FLConfig trains
    different = {k for k in scenario if scenario[k] != internal[k]}
    assert different == {"enabled"}


def test_a_scenario_block_is_carried_over_unchanged() -> None:
    block = Forecaster(enabled=True, clients=7, rounds=3, dp_noise_multiplier=1.5, dp_clip=0.25)
    config = fl_config(block)
    for name in Forecaster.model_fields:
        assert getattr(config, name) == getattr(block, name), name
    assert fl_config(Forecaster(secagg_bound=2.5)).secagg_bound == 2.5
