"""What a run remembers about settlement: one record per market and round (or request).

Plain mutable records filled in as the protocol runs;
:func:`sim.results.tables.settlement_table` turns them into the ``settlement`` table and
:func:`market_summaries` into the per-market records the ``settlement.*`` metrics are computed
from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sim.results.records import SettlementRecord
from sim.settlement.votes import REASONS, Reason

NAN = math.nan

Step = Literal["vote", "proposal"]
"""A voting round (BFT, or the optimistic oracle's final vote), or an optimistic request."""


@dataclass(slots=True)
class RoundRecord:
    """One market's round of voting, or one of its optimistic requests.

    Attributes:
        market, round: which; optimistic requests are rounds 0 and 1, its votes follow.
        step: ``vote`` or ``proposal``.
        true_outcome: the outcome that happened.
        votes: valid signed votes cast per outcome in this round.
        t_start: when the round began (the request was recorded).
        leader: the round's leader, or the request's proposer (-1: none).
        proposed: the outcome the leader or proposer put forward (-1: none).
        outcome: the outcome this round made final (-1: it did not).
        t_final: when the chain made it final (NaN: it did not).
        certificate_size: signatures in the certificate that made it final.
        rejected: distinct rejected votes by reason.
        refused: settlement steps of this round the chain refused (forged certificates,
            late or unpaid bonds).
        disputes: disputes recorded against this request (0 or 1).
        bonds_moved: micro-units bonded in this request (proposal and dispute).
        bond_slashed: micro-units the wrong side of this request's dispute lost (-1: none yet).
    """

    market: int
    round: int
    step: Step
    true_outcome: int
    votes: list[int]
    t_start: float
    leader: int = -1
    proposed: int = -1
    outcome: int = -1
    t_final: float = NAN
    certificate_size: int = 0
    rejected: dict[Reason, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    refused: int = 0
    disputes: int = 0
    bonds_moved: int = 0
    bond_slashed: int = -1

    @property
    def finalized(self) -> bool:
        """Whether this round made the market final."""
        return not math.isnan(self.t_final)


def market_summaries(
    records: Iterable[RoundRecord], *, truth: Sequence[int]
) -> list[SettlementRecord]:
    """One record per market: its final round's outcome, time, leader and certificate."""
    summaries = [SettlementRecord(m, o, []) for m, o in enumerate(truth)]
    for record in records:
        summary = summaries[record.market]
        if record.finalized:
            summary.outcome, summary.t_final = record.outcome, record.t_final
            summary.leader, summary.certificate_size = record.leader, record.certificate_size
            summary.votes = list(record.votes)
    return summaries
