"""Settlement steps and the optimistic oracle's requests and bonds, as frozen values.

A market settles through :class:`Settlement` steps applied by :class:`market.exchange.Exchange`:
a ``certificate`` (BFT voting) settles at once; the optimistic oracle goes through ``propose``,
``dispute`` and ``expire``, with bonds released by :func:`bond_release` once the market is final.
``evidence`` (a reporter's two signatures on one consensus step) slashes that reporter's stake,
settled market or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from market.accounts import TREASURY, reporter_account

SettlementKind = Literal["certificate", "propose", "dispute", "expire", "evidence"]


@dataclass(frozen=True, slots=True)
class Settlement:
    """One settlement step of a market, with the evidence that justifies it.

    Attributes:
        market: the market.
        outcome: the winning outcome (``certificate``), the bonded one (``propose``), the one
            the disputer holds true (``dispute``).
        voters: ``certificate``: the reporters whose votes for ``outcome`` justify it (sorted,
            distinct); ``propose``/``dispute``: the one reporter who posts the bond.
        round: ``certificate``: the voting round the votes were cast in.
        signatures: one per voter, aligned with ``voters`` (empty where nothing is signed).
        kind: which step (see the module docstring).
        request: ``propose``/``dispute``/``expire``: the market's request number (0, then 1
            after a first dispute).
        t: the time of the block carrying the step (the liveness window is checked with it).
        step: ``evidence``: the consensus step the signer signed twice (``prevote`` or
            ``precommit``); ``round`` is the round and ``voters`` the one signer.
        values: ``evidence``: the two values signed, with ``signatures`` aligned to them
            (``outcome`` is unused).
    """

    market: int
    outcome: int
    voters: tuple[int, ...] = ()
    round: int = 0
    signatures: tuple[bytes, ...] = ()
    kind: SettlementKind = "certificate"
    request: int = 0
    t: float = 0.0
    step: str = ""
    values: tuple[int, ...] = ()

    def accused(self) -> tuple[int, int, int, str]:
        """``evidence``: ``(signer, market, round, step)``, the one signature slot it shows
        signed twice; the chain takes one piece of evidence per slot."""
        return (self.voters[0], self.market, self.round, self.step)

    def evidence_bytes(self) -> int:
        """Bytes of the evidence on the wire: voter ids, signatures, request and time."""
        header = {"certificate": 0, "evidence": 6 + 2 * len(self.values)}.get(self.kind, 12)
        return 2 * len(self.voters) + sum(len(sig) for sig in self.signatures) + header


@dataclass(frozen=True, slots=True)
class OracleTerms:
    """The optimistic oracle's terms, fixed when the markets open.

    Attributes:
        bond: micro-units a proposer, and then a disputer, must post.
        liveness: seconds during which a proposal may be disputed.
    """

    bond: int
    liveness: float


@dataclass(frozen=True, slots=True)
class Request:
    """One proposal of a market's outcome on the optimistic oracle, maybe disputed.

    Attributes:
        proposer: the reporter node that bonded ``outcome``.
        outcome: the proposed outcome.
        bond: micro-units each side posted.
        t: when the proposal was recorded on chain.
        disputer: the reporter node that disputed it (-1: undisputed).
    """

    proposer: int
    outcome: int
    bond: int
    t: float
    disputer: int = -1

    @property
    def disputed(self) -> bool:
        """Whether someone bonded against the proposal."""
        return self.disputer >= 0


def bond_release(request: Request, outcome: int) -> list[tuple[int, int]]:
    """Where a request's bonds go once the market settled to ``outcome``: ``(account, micro)``.

    Undisputed: the bond goes back to its proposer. Disputed: the side that was right (the
    proposer if it proposed ``outcome``, else the disputer) gets its bond back plus half of the
    loser's (rounded down); the treasury gets the rest of the loser's bond.
    """
    if not request.disputed:
        return [(reporter_account(request.proposer), request.bond)]
    right = request.proposer if request.outcome == outcome else request.disputer
    award = request.bond // 2
    return [(reporter_account(right), request.bond + award), (TREASURY, request.bond - award)]
