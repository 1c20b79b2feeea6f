"""Federated training of the forecasting agent: the parts that need no clock.

Modules, from data to attacks:

* :mod:`~sim.world.forecast`: the logistic ground truth, the market world, non-IID client data.
* :mod:`~sim.federated.model`: the :class:`Model` protocol and logistic regression.
* :mod:`~sim.federated.strategy`: :class:`FLConfig`, FedAvg / DP-FedAvg, round outcomes.
* :mod:`~sim.federated.secagg`: secure aggregation (Bonawitz et al. 2017) as pure steps (its
  building blocks in :mod:`~sim.federated.secagg_crypto` and
  :mod:`~sim.federated.secagg_roster`).
* :mod:`~sim.federated.dp`: clipping, Gaussian and discrete Gaussian noise, the distributed
  discrete Gaussian's accounting and the RDP ledger (``dp_accounting``).
* :mod:`~sim.federated.consent`: consent withdrawal and per-client budgets (an individual
  privacy filter): who may be sampled each round.
* :mod:`~sim.federated.attacks`: gradient inversion and loss-threshold membership inference.
* :mod:`~sim.federated.rounds`: the client and server steps of one round, and each client's
  share of the noise in clients mode.
* :mod:`~sim.federated.training`: an in-process driver of those steps, and the pooled baseline.
* :mod:`~sim.federated.process`: the simulation component that runs the rounds over the
  simulated network and lets the trained forecaster trade.

The simpy layer calls the per-client and per-round steps of :mod:`~sim.federated.rounds` and
:mod:`~sim.federated.secagg` with its own clock, latencies and dropouts.
"""

from sim.federated.strategy import ClientResult, FedAvg, FLConfig, RoundOutcome
from sim.federated.training import PhaseTimer, RoundRow, TrainingResult, train, train_centralized

__all__ = [
    "ClientResult",
    "FLConfig",
    "FedAvg",
    "PhaseTimer",
    "RoundOutcome",
    "RoundRow",
    "TrainingResult",
    "train",
    "train_centralized",
]
