"""What a run remembers about settlement: one record per market and round (or request).

Plain mutable records filled in as the protocol runs;
:func:`settlement_table` turns them into the ``settlement`` table (one row per market),
:func:`steps_table` into ``settlement_steps`` (one per round or request), and
:func:`market_summaries` into the per-market records the ``settlement.*`` metrics are computed
from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from market.types import MICRO
from sim.results.records import SettlementRecord
from sim.results.tables import frame, nan_to_none, none_if
from sim.settlement.rules import REASONS, Reason

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
        votes: signed votes cast per outcome in this round (BFT: precommits).
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
        disputer: the reporter who disputed this request's proposal (-1: nobody).
        prevotes: BFT prevotes cast per outcome in this round.
        nil_prevotes, nil_precommits: BFT votes cast for no value (timeouts, locks, invalid
            proposals).
        equivocations: pieces of evidence of this round the chain took (a signer's two values
            in one step).
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
    disputer: int = -1
    prevotes: list[int] = field(default_factory=list)
    nil_prevotes: int = 0
    nil_precommits: int = 0
    equivocations: int = 0

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


def settlement_table(records: Sequence[RoundRecord], *, protocol: str, run_id: str) -> pl.DataFrame:
    """One row per market: whether it was final, the outcome the chain paid, and totals.

    ``outcome`` is the outcome of the step that made the market final (what the chain paid out:
    ``ledger.payout_error`` checks the payouts against it); it, ``t_final``, ``correct``,
    ``leader`` and ``certificate_size`` are null for a market never final. ``rounds`` counts the
    market's rows in ``settlement_steps``; ``bond_slashed`` is null where no bond was lost.
    ``records`` must hold at least one record per market (:meth:`SettlementProtocol.rows`).
    """
    markets: dict[int, list[RoundRecord]] = {}
    for record in records:
        markets.setdefault(record.market, []).append(record)
    rows = [(market, steps, _final(steps)) for market, steps in sorted(markets.items())]
    slashed = [[r.bond_slashed for r in steps if r.bond_slashed >= 0] for _, steps, _ in rows]
    columns: dict[str, list[Any]] = {
        "market": [market for market, _, _ in rows],
        "protocol": [protocol] * len(rows),
        "finalized": [final is not None for _, _, final in rows],
        "outcome": [None if f is None else f.outcome for _, _, f in rows],
        "true_outcome": [steps[0].true_outcome for _, steps, _ in rows],
        "correct": [None if f is None else f.outcome == f.true_outcome for _, _, f in rows],
        "t_final": [None if f is None else f.t_final for _, _, f in rows],
        "rounds": [sum(not math.isnan(r.t_start) for r in steps) for _, steps, _ in rows],
        "leader": [None if f is None else none_if(f.leader) for _, _, f in rows],
        "certificate_size": [None if f is None else f.certificate_size for _, _, f in rows],
        "disputes": [sum(r.disputes for r in steps) for _, steps, _ in rows],
        "rejected_votes": [sum(sum(r.rejected.values()) for r in steps) for _, steps, _ in rows],
        "equivocations": [sum(r.equivocations for r in steps) for _, steps, _ in rows],
        "refused_settlements": [sum(r.refused for r in steps) for _, steps, _ in rows],
        "bonds_moved": [sum(r.bonds_moved for r in steps) / MICRO for _, steps, _ in rows],
        "bond_slashed": [sum(lost) / MICRO if lost else None for lost in slashed],
    }
    return frame("settlement", columns, run_id)


def _final(steps: Sequence[RoundRecord]) -> RoundRecord | None:
    """The step that made a market final (None: none did)."""
    return next((r for r in steps if r.finalized), None)


def steps_table(records: Sequence[RoundRecord], *, protocol: str, run_id: str) -> pl.DataFrame:
    """One row per market and settlement round (votes) or request (optimistic proposals).

    ``outcome``, ``t_final`` and ``correct`` are null on rows that made nothing final;
    ``bond_slashed`` is null where no bond was lost.
    """
    recs = records
    columns: dict[str, list[Any]] = {
        "market": [r.market for r in recs],
        "round": [r.round for r in recs],
        "protocol": [protocol] * len(recs),
        "step": [r.step for r in recs],
        "leader": [none_if(r.leader) for r in recs],
        "proposed": [none_if(r.proposed) for r in recs],
        "outcome": [none_if(r.outcome) for r in recs],
        "true_outcome": [r.true_outcome for r in recs],
        "votes": [json.dumps(r.votes) for r in recs],
        "rejected_votes": [sum(r.rejected.values()) for r in recs],
        **{f"rejected_{k}": [r.rejected[k] for r in recs] for k in REASONS},
        "prevotes": [json.dumps(r.prevotes) for r in recs],
        "nil_prevotes": [r.nil_prevotes for r in recs],
        "nil_precommits": [r.nil_precommits for r in recs],
        "equivocations": [r.equivocations for r in recs],
        "refused_settlements": [r.refused for r in recs],
        "disputes": [r.disputes for r in recs],
        "bonds_moved": [r.bonds_moved / MICRO for r in recs],
        "bond_slashed": [None if r.bond_slashed < 0 else r.bond_slashed / MICRO for r in recs],
        "t_start": [nan_to_none(r.t_start) for r in recs],
        "t_final": [nan_to_none(r.t_final) for r in recs],
        "finalized": [r.finalized for r in recs],
        "correct": [r.outcome == r.true_outcome if r.finalized else None for r in recs],
        "certificate_size": [r.certificate_size for r in recs],
    }
    return frame("settlement_steps", columns, run_id)
