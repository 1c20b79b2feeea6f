"""An independent audit of every payout: each account's balance recomputed from the run's records.

``ledger.conservation_error`` is 0 by construction (only zero-sum transfers move cash), so it
cannot see money paid twice or to the wrong party. This audit does not read the ledger after
genesis, nor run the exchange's code: it starts from the balances every replica opened with
(the mints, before block 0) and adds up what the run recorded, by its own statement of the
rules:

* every executed order: its trader pays the market's maker what the order record says it cost
  (fees included; a sale is a negative cost) and holds the shares it traded; a plaintext order
  also pays its priority fee to the treasury (a batch clears without priority);
* every commit-reveal deposit: it leaves its trader for escrow, and comes back on a reveal in
  time or goes to the treasury when forfeited;
* every market the settlement records call final: its maker pays each holder of the outcome
  they name one micro-unit per micro-share;
* every optimistic bond: it leaves its poster for the bond escrow; once the market is final an
  undisputed bond goes back to its proposer, a disputed one's right side gets its bond back plus
  half of the loser's (rounded down) and the treasury the rest;
* every reporter the settlement records say was slashed (evidence of its equivocation taken on
  chain): its whole reporter account goes to the treasury. The protocol records *who* was
  slashed, never how much: the audit's own balance of that account says what it held (exact
  where nothing else moves the account after the slash, as in BFT, where reporters post no
  bonds and evidence is collected).

``ledger.payout_error`` is the sum over accounts of the gap, in micro-units, between this and
the canonical ledger's balance: 0 when every payout went where the records say it should.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from market.accounts import BOND_ESCROW, ESCROW, TREASURY, maker_account, reporter_account
from sim.results.records import OrderRecord


@dataclass(frozen=True, slots=True)
class BondRecord:
    """One optimistic request as the settlement protocol recorded it.

    Attributes:
        market: the market.
        proposer: the reporter node that bonded the proposal.
        outcome: the outcome it proposed.
        bond: micro-units each side posted.
        disputer: the reporter node that bonded against it (-1: undisputed).
    """

    market: int
    proposer: int
    outcome: int
    bond: int
    disputer: int = -1


@dataclass(frozen=True, slots=True)
class PayoutRecords:
    """What a settlement protocol recorded about money: outcomes made final, bonds posted.

    Attributes:
        outcomes: the outcome each final market was settled to, by market.
        bonds: every request whose proposal the chain took.
        slashed: the reporter nodes whose equivocation evidence the chain took.
    """

    outcomes: Mapping[int, int]
    bonds: tuple[BondRecord, ...] = ()
    slashed: tuple[int, ...] = ()


def _bonds(ledger: Counter[int], bonds: Iterable[BondRecord], outcomes: Mapping[int, int]) -> None:
    """Post each bond to escrow; release it by the oracle's rule once its market is final."""
    for b in bonds:
        posters = [b.proposer] if b.disputer < 0 else [b.proposer, b.disputer]
        for poster in posters:
            ledger[reporter_account(poster)] -= b.bond
            ledger[BOND_ESCROW] += b.bond
        if b.market not in outcomes:
            continue
        ledger[BOND_ESCROW] -= b.bond * len(posters)
        if b.disputer < 0:
            ledger[reporter_account(b.proposer)] += b.bond
            continue
        right = b.proposer if b.outcome == outcomes[b.market] else b.disputer
        ledger[reporter_account(right)] += b.bond + b.bond // 2
        ledger[TREASURY] += b.bond - b.bond // 2


def recomputed_balances(
    opening: Mapping[int, int], orders: Sequence[OrderRecord], payouts: PayoutRecords
) -> dict[int, int]:
    """Every account's balance in micro-units, from genesis and the run's records only."""
    ledger: Counter[int] = Counter(opening)
    held: Counter[tuple[int, int, int]] = Counter()
    deposit_to = {"escrowed": ESCROW, "forfeited": TREASURY}
    for r in orders:
        order = r.order
        if r.deposit_state != "none":
            ledger[order.trader] -= r.deposit
            ledger[deposit_to.get(r.deposit_state, order.trader)] += r.deposit
        if r.status != "executed":
            continue
        ledger[order.trader] -= r.paid
        ledger[maker_account(order.market)] += r.paid
        held[(order.trader, order.market, order.outcome)] += r.filled
        if r.batch_id < 0:
            ledger[order.trader] -= order.priority_fee
            ledger[TREASURY] += order.priority_fee
    for (account, market, outcome), shares in held.items():
        if payouts.outcomes.get(market) == outcome:
            ledger[maker_account(market)] -= shares
            ledger[account] += shares
    _bonds(ledger, payouts.bonds, payouts.outcomes)
    for node in payouts.slashed:
        stake = ledger[reporter_account(node)]
        ledger[reporter_account(node)] -= stake
        ledger[TREASURY] += stake
    return dict(ledger)


def payout_error(recomputed: Mapping[int, int], balances: Mapping[int, int]) -> int:
    """Σ over accounts of |recorded balance − ledger balance|, in micro-units (must be 0)."""
    accounts = set(recomputed) | set(balances)
    return sum(abs(recomputed.get(a, 0) - balances.get(a, 0)) for a in accounts)
