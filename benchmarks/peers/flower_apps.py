"""Flower's side of :mod:`benchmarks.peers.flower_fedavg`: its ``ServerApp`` and ``ClientApp``.

Plain FedAvg runs on Flower's Message API (its new ``FedAvg``); SecAgg+ runs on the legacy
strategy its ``SecAggPlusWorkflow`` drives, with ``secaggplus_mod`` on the clients.

Imports ``flwr`` unconditionally (the runner guards the import). A module of its own so that
Ray's workers find the client's function by this module's name, whatever ran the runner.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_PARAMS_RECORD
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from benchmarks.fl import SCENARIO, world
from sim.federated.model import LogisticRegression
from sim.federated.strategy import FLConfig
from sim.federated.training import client_rng, client_update
from sim.world.forecast import ClientData

WORKLOAD = replace(SCENARIO, dropout=0.0, secure_aggregation=False)
"""The FL benchmark's scenario, plain, without dropout (Flower's clients never drop)."""
SEED = 0
PER_ROUND = round(WORKLOAD.client_fraction * WORKLOAD.clients)
"""Clients Flower samples per round: the expected count of veilcast's Poisson sampling."""
COMPLETE_GRAPH = 1.0
MAJORITY = 0.51
"""SecAgg+'s reconstruction threshold as a share of ``num_shares``: a strict majority, as in
veilcast (``⌊n/2⌋ + 1``)."""
"""SecAgg+'s ``num_shares`` as a share of the sampled clients: all of them, as in veilcast."""


@cache
def _clients(config: FLConfig, seed: int) -> list[ClientData]:
    """The workload's clients, rebuilt from the seed in each Ray actor (once per process)."""
    return world(config, seed)[0]


def _local_model(client: int, params: np.ndarray, server_round: int) -> tuple[np.ndarray, int]:
    """``client``'s model after veilcast's own client step from ``params``, and its records."""
    data = _clients(WORKLOAD, SEED)[client]
    result = client_update(
        LogisticRegression(WORKLOAD.features),
        params,
        data,
        config=WORKLOAD,
        rng=client_rng(SEED, server_round, client),
    )
    return params + result.delta, data.samples


def _initial() -> np.ndarray:
    """The global model both sides start from."""
    return LogisticRegression(WORKLOAD.features).init(np.random.default_rng(SEED))


def train(message: Message, context: Context) -> Message:
    """A Flower client's round on the Message API: veilcast's client step."""
    local, samples = _local_model(
        int(context.node_config["partition-id"]),
        message.content["arrays"].to_numpy_ndarrays()[0],
        int(message.content["config"]["server-round"]),
    )
    content = RecordDict(
        {"arrays": ArrayRecord([local]), "metrics": MetricRecord({"num-examples": samples})}
    )
    return Message(content=content, reply_to=message)


class TimedFedAvg(FedAvg):  # type: ignore[misc]
    """Flower's FedAvg with a clock from configuring a round to its aggregated model."""

    def __init__(self, spent: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spent = spent
        self.started = 0.0

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Any:
        self.started = time.perf_counter()
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Any) -> Any:
        replies = list(replies)
        if len(replies) != PER_ROUND or any(r.has_error() for r in replies):
            errors = [r.error for r in replies if r.has_error()][:3]
            raise RuntimeError(f"round {server_round}: {len(replies)} replies, errors {errors}")
        result = super().aggregate_train(server_round, replies)
        self.spent.append(time.perf_counter() - self.started)
        return result


def apps(rounds: int, spent: list[float], final: list[np.ndarray]) -> tuple[ServerApp, ClientApp]:
    """Flower's apps for ``rounds`` rounds: each round's seconds go to ``spent``, the final
    global parameters to ``final``."""
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        initial = _initial()
        strategy = TimedFedAvg(
            spent,
            fraction_train=WORKLOAD.client_fraction,
            fraction_evaluate=0.0,
            min_train_nodes=PER_ROUND,  # else the first round may start on the first nodes up
            min_available_nodes=WORKLOAD.clients,
        )
        result = strategy.start(grid=grid, initial_arrays=ArrayRecord([initial]), num_rounds=rounds)
        final.append(result.arrays.to_numpy_ndarrays()[0])

    client = ClientApp()
    client.train()(train)
    return server, client


class _LocalClient(NumPyClient):  # type: ignore[misc]
    """A Flower NumPyClient running veilcast's client step (for the SecAgg+ workflow)."""

    def __init__(self, client: int) -> None:
        self.client = client

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
        local, samples = _local_model(self.client, parameters[0], int(config["server-round"]))
        return [local], samples, {}


def _numpy_client(context: Context) -> Any:
    return _LocalClient(int(context.node_config["partition-id"])).to_client()


class TimedLegacyFedAvg(LegacyFedAvg):  # type: ignore[misc]
    """Flower's legacy FedAvg, which its SecAgg+ workflow drives, with a round clock."""

    def __init__(self, spent: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spent = spent
        self.started = 0.0

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        self.started = time.perf_counter()
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        if len(results) != PER_ROUND or failures:
            raise RuntimeError(f"round {server_round}: {len(results)} results, {failures[:3]}")
        aggregated = super().aggregate_fit(server_round, results, failures)
        self.spent.append(time.perf_counter() - self.started)
        return aggregated


def secagg_plus_apps(
    rounds: int, spent: list[float], final: list[np.ndarray], *, shares: float = COMPLETE_GRAPH
) -> tuple[ServerApp, ClientApp]:
    """Flower's SecAgg+ workflow for ``rounds`` rounds, each client's secrets in ``shares``
    shares (its neighbours and itself) with a majority threshold: :data:`COMPLETE_GRAPH`
    (every sampled client, as veilcast's protocol), or an integer ``k``, SecAgg+'s sparse
    graph of ``k − 1`` neighbours."""
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        initial = _initial()
        strategy = TimedLegacyFedAvg(
            spent,
            fraction_fit=WORKLOAD.client_fraction,
            fraction_evaluate=0.0,
            min_fit_clients=PER_ROUND,
            min_available_clients=WORKLOAD.clients,
            initial_parameters=ndarrays_to_parameters([initial]),
            on_fit_config_fn=lambda server_round: {"server-round": server_round},
        )
        legacy = LegacyContext(
            context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy
        )
        fit = SecAggPlusWorkflow(num_shares=shares, reconstruction_threshold=MAJORITY)
        DefaultWorkflow(fit_workflow=fit)(grid, legacy)
        final.append(legacy.state.array_records[MAIN_PARAMS_RECORD].to_numpy_ndarrays()[0])

    client = ClientApp(client_fn=_numpy_client, mods=[secaggplus_mod])
    return server, client
