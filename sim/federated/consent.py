"""Consent and per-client privacy budgets: who may take part in a round, and what each has spent.

Two rules, both enforced before a round samples its clients (a client they exclude is never
sampled, so its data never enters another update):

* **Withdrawal** (GDPR Art. 7(3): consent withdrawn as easily as given). ``withdraw_fraction``
  of the clients withdraw at a round drawn from the world seed
  (:func:`sim.world.forecast.consent_withdrawals`); from that round on they are out for good.
  Withdrawal is not erasure: what the model learnt from them before stays in it (the run
  measures how much with ``fl.withdrawn_mia_auc``).
* **Per-client budgets**, an *individual privacy filter* (Feldman & Zrnic, "Individual Privacy
  Accounting via a Rényi Filter", NeurIPS 2021): a client is charged only for the rounds its
  update entered the released sum (a survivor of a completed round), each at the
  **unamplified** Gaussian cost of that round's noise multiplier, never at the subsampled
  cost: participation-only charging and amplification by sampling are never combined, since
  the charge already conditions on the client having been sampled. A client's ``ε`` at
  ``dp_delta`` is dp_accounting's RDP composition of its charged rounds
  (:meth:`~sim.federated.dp.RdpLedger.client_epsilon`). Before each round, a client whose
  ``ε`` would exceed ``client_epsilon_budget`` after one more round at the worst multiplier a
  round can be accounted at (:func:`worst_round_multiplier`) stops taking part: the realised
  ``ε`` therefore never exceeds the budget. The charges depend only on sampling and dropouts,
  never on the data, so stopping on ``ε`` minimised over RDP orders keeps the filter valid.

The run-level ``fl.dp_epsilon`` stays the amplified guarantee over every round started; the
per-client values answer "what has my own data been exposed to", and are usually larger per
round (no amplification) but count only the rounds the client took part in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sim.federated.dp import RdpLedger
from sim.federated.rounds import ClientNoise
from sim.federated.strategy import FLConfig

DROPOUT_FLOOR = 0.5
"""Smallest survivor share of a completed clients-mode round: secure aggregation aborts below a
strict majority of the share holders, so a completed round keeps more than half its members'
noise, and its multiplier is at least ``σ·√½`` (less the tiny part of Kairouz et al.'s ``τ``)."""


def worst_round_multiplier(
    config: FLConfig, noise: ClientNoise | None, *, members: int, dim: int
) -> float:
    """The smallest noise multiplier one round can be accounted at (for the budget check).

    ``σ`` when the server adds the noise. In clients mode (``noise``: the members' shares)
    dropouts remove their share of the noise but a completed round keeps more than half of it
    (:data:`DROPOUT_FLOOR`), so ``σ·√½``, lowered further by Kairouz et al.'s ``τ`` for a round
    of all ``members`` clients (:meth:`ClientNoise.worst_multiplier`; ``τ`` underflows to 0 at
    ordinary scales, but not for tiny ``σ`` with thousands of members).
    """
    if not config.clients_noise:
        return config.dp_noise_multiplier
    if noise is None:
        raise ValueError("clients-side noise needs the members' ClientNoise")
    return noise.worst_multiplier(members=members, dim=dim, surviving=DROPOUT_FLOOR)


@dataclass(frozen=True, slots=True)
class ClientPrivacy:
    """One ``fl_clients`` row: a client's records, rounds taken part in and its own ``ε``.

    ``withdrawn_at`` and ``exhausted_at`` are the first round the client was excluded from for
    that reason (None: never).
    """

    client: int
    node: int
    records: int
    rounds: int
    epsilon: float
    withdrawn_at: int | None
    exhausted_at: int | None


@dataclass(slots=True)
class ConsentLedger:
    """Which clients may take part in each round, and every client's charged rounds.

    Attributes:
        ledger: the run's RDP ledger (its curves serve the per-client composition).
        delta: ``dp_delta``.
        budget: ``client_epsilon_budget`` (inf: no budget, nobody is ever excluded for it).
        worst: the multiplier the budget check assumes for the next round.
        withdrawals: client → the round from which it has withdrawn consent.
    """

    ledger: RdpLedger
    delta: float
    budget: float
    worst: float
    withdrawals: Mapping[int, int]
    charged: dict[int, list[float]] = field(default_factory=dict)
    withdrawn_at: dict[int, int] = field(default_factory=dict)
    exhausted_at: dict[int, int] = field(default_factory=dict)
    history: list[tuple[int, int, float]] = field(default_factory=list)
    """``(round, client, ε after it)`` per charge, in order (the ``fl_client_epsilon`` rows)."""

    @classmethod
    def for_config(
        cls, config: FLConfig, ledger: RdpLedger, withdrawals: Mapping[int, int], *, worst: float
    ) -> ConsentLedger:
        """The consent ledger of a run's settings (a finite budget needs DP); ``worst`` is
        :func:`worst_round_multiplier` for the run."""
        if math.isfinite(config.client_epsilon_budget) and not config.dp:
            raise ValueError("a per-client epsilon budget needs DP (dp_noise_multiplier > 0)")
        return cls(
            ledger,
            config.dp_delta,
            config.client_epsilon_budget,
            worst,
            dict(withdrawals),
        )

    def eligible(self, round_number: int, clients: Iterable[int]) -> tuple[int, ...]:
        """The clients that may be sampled in ``round_number`` (records who left, and why)."""
        allowed = []
        for c in clients:
            if c in self.withdrawn_at:
                continue
            if self.withdrawals.get(c, math.inf) <= round_number:  # exhausted or not
                self.withdrawn_at[c] = round_number
                continue
            if c in self.exhausted_at:
                continue
            if math.isfinite(self.budget) and self._next_exceeds(c):
                self.exhausted_at[c] = round_number
                continue
            allowed.append(c)
        return tuple(allowed)

    def _next_exceeds(self, client: int) -> bool:
        after = [*self.charged.get(client, []), self.worst]
        return self.ledger.client_epsilon(after, delta=self.delta) > self.budget

    def charge(self, round_number: int, contributors: Sequence[int], multiplier: float) -> None:
        """The clients whose updates entered ``round_number``'s released sum pay for it."""
        for c in contributors:
            spent = self.charged.setdefault(c, [])
            spent.append(multiplier)
            self.history.append((round_number, c, self.epsilon(c)))

    def epsilon(self, client: int) -> float:
        """``client``'s own ``ε`` at ``δ`` (0 if it never took part, inf for a round without DP)."""
        return self.ledger.client_epsilon(self.charged.get(client, []), delta=self.delta)

    def rounds(self, client: int) -> int:
        """Rounds ``client`` took part in."""
        return len(self.charged.get(client, []))
