"""The replicated state machine: market makers plus a ledger, advanced one block at a time.

Every replica (and the sequencer, whose copy is the run's record) holds an :class:`Exchange` and
applies the same blocks in the same order, so equal inputs give equal state hashes; the runner
compares them to report replica divergence.

Accounts (:mod:`market.accounts`) are plain integers: traders use their trader ids, each
market's maker and each reporter has its own account, and the treasury collects priority fees
(standing for the sequencers), forfeited deposits and the treasury's share of bonds.

Settlement is a sequence of :class:`~market.oracle.Settlement` steps. A ``certificate`` settles
a market at once (BFT voting). The optimistic oracle (UMA-style) goes through ``propose`` (a
reporter bonds an outcome), ``dispute`` (another bonds against it within the liveness window:
the first dispute resets the request for a new proposal, the second sends the market to a vote,
which ends in a ``certificate``) and ``expire`` (liveness passed undisputed: the proposal
settles the market). Bonds wait in :data:`BOND_ESCROW` until the market is final, then the
winner of each dispute gets its bond back plus half of the loser's and the treasury the rest:
every bond is a ledger transfer, so conservation holds through every step. The exchange checks
what the state allows; signatures and quorums are checked before (``settlement_ok`` in
:mod:`sim.chain.blocks`).

``evidence`` (a reporter's two signatures on different values in one consensus step) is
accountability, not settlement: it is taken whether the market is settled or not, once per
``(signer, market, round, step)``, and the first piece against a reporter *slashes* it: its
whole reporter account (its endowment, its stake) goes to the treasury, a zero-sum transfer.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from market.accounts import (
    BOND_ESCROW,
    ESCROW,
    TREASURY,
    ShieldedPool,
    maker_account,
    reporter_account,
)
from market.batch import BatchResult, clear_batch
from market.crypto import CryptoMeter, open_commitment
from market.errors import CryptoError
from market.execute import Rejection, execute_order
from market.ledger import Ledger
from market.lmsr import MarketMaker
from market.oracle import OracleTerms, Request, Settlement, bond_release
from market.types import MICRO, Fill, Order


def maker_funding(maker: MarketMaker) -> int:
    """Micro-units a maker is funded with: its subsidy rounded up, so it can always pay out."""
    return math.ceil(maker.subsidy() * MICRO)


@lru_cache(maxsize=64)
def _clear_batch_memo(
    makers: tuple[MarketMaker, ...],
    orders: tuple[Order, ...],
    fee_per_share: int,
    cash: tuple[tuple[int, int], ...],
    held: tuple[tuple[tuple[int, int, int], int], ...],
) -> BatchResult:
    """:func:`clear_batch`, remembered for equal inputs.

    Every replica clears the same batch from the same state; the clearing is a pure function, so
    a replica whose state differs gets its own result, and equal replicas share one computation
    (about 3 ms each with quadrature) instead of repeating it.
    """
    return clear_batch(
        makers, orders, fee_per_share=fee_per_share, cash=dict(cash), held=dict(held)
    )


class Exchange:
    """Market makers and a ledger; the state every replica keeps.

    Args:
        makers: one market maker per market, in market order.
        ledger: balances, already minted (traders' budgets, makers' funding).
        fee_per_share: the market's fee in micro-units per share, paid to the maker.
    """

    __slots__ = (
        "applied",
        "closed",
        "commitments",
        "evidence",
        "fee_per_share",
        "ledger",
        "makers",
        "pool",
        "requests",
        "reveal_deadline_s",
        "sealed",
        "slashed",
        "terms",
    )

    def __init__(
        self, makers: Sequence[MarketMaker], ledger: Ledger, *, fee_per_share: int
    ) -> None:
        self.makers = list(makers)
        self.ledger = ledger
        self.fee_per_share = fee_per_share
        self.closed: set[int] = set()
        self.commitments: dict[bytes, tuple[int, int, float]] = {}
        """Open commitments: trader, escrowed deposit, and the time of the block that made it."""
        self.reveal_deadline_s: float | None = None
        """How long after its block a commitment may be revealed; None: no deadline."""
        self.sealed: dict[int, list[tuple[int, bytes]]] = {}
        """The sealed (encrypted) orders on chain by epoch, in chain order: sender, ciphertext."""
        self.terms: OracleTerms | None = None
        """The optimistic oracle's terms; None: no proposal is accepted (BFT settlement)."""
        self.requests: dict[int, tuple[Request, ...]] = {}
        """Each market's optimistic requests, oldest first."""
        self.evidence: set[tuple[int, int, int, str]] = set()
        """The ``(signer, market, round, step)`` of every piece of evidence taken."""
        self.slashed: dict[int, int] = {}
        """Micro-units slashed from each equivocating reporter (its account, at the first piece)."""
        self.applied: list[Settlement] = []
        """Every settlement step that changed the state, in order: an audit trail derived from
        the blocks (so not part of the state hash)."""
        self.pool = ShieldedPool()
        """The accounts behind one-time addresses, shared by every copy (not in the state)."""

    def copy(self) -> Exchange:
        """An independent replica of this state."""
        other = Exchange(self.makers, self.ledger.copy(), fee_per_share=self.fee_per_share)
        other.closed = set(self.closed)
        other.commitments = dict(self.commitments)
        other.reveal_deadline_s = self.reveal_deadline_s
        other.sealed = {epoch: list(blobs) for epoch, blobs in self.sealed.items()}
        other.terms = self.terms
        other.requests = dict(self.requests)
        other.evidence = set(self.evidence)
        other.slashed = dict(self.slashed)
        other.applied = list(self.applied)
        other.pool = self.pool
        return other

    def _own(self, order: Order) -> Order:
        """``order`` as booked: its one-time address (if any) replaced by the account behind it."""
        account = self.pool.owner(order.trader)
        return order if account == order.trader else replace(order, trader=account)

    def execute(self, order: Order) -> Fill | Rejection:
        """Execute one order; a rejection changes nothing.

        The trade is booked against the account behind the order's address; the result names
        the order as it was sent.
        """
        own = self._own(order)
        result = self._execute(own)
        return result if own is order else replace(result, order=order)

    def _execute(self, order: Order) -> Fill | Rejection:
        if not 0 <= order.market < len(self.makers):
            return Rejection(order, "invalid")
        if order.market in self.closed or self.ledger.is_settled(order.market):
            return Rejection(order, "closed")
        maker = self.makers[order.market]
        held = self.ledger.position(order.trader, order.market, order.outcome)
        new_maker, result = execute_order(
            maker,
            order,
            fee_per_share=self.fee_per_share,
            cash=self.ledger.cash(order.trader) - order.priority_fee,
            held=held,
        )
        if isinstance(result, Fill):
            self.ledger.apply_fill(result, maker=maker_account(order.market))
            if order.priority_fee:
                self.ledger.transfer(order.trader, TREASURY, order.priority_fee)
            self.makers[order.market] = new_maker
        return result

    def execute_batch(self, orders: Sequence[Order]) -> BatchResult:
        """Clear a batch at one uniform price per outcome (order-independent, budgets kept).

        Orders for closed or settled markets are rejected as ``closed`` before clearing. Budgets
        and positions are the accounts' behind the orders' addresses; the result names the
        orders as they were sent.
        """
        sent = {own.key: order for order in orders if (own := self._own(order)) is not order}
        result = self._execute_batch([self._own(o) for o in orders])
        if not sent:
            return result
        fills = [replace(f, order=sent.get(f.order.key, f.order)) for f in result.fills]
        rejections = [replace(r, order=sent.get(r.order.key, r.order)) for r in result.rejections]
        return replace(
            result,
            fills=tuple(sorted(fills, key=lambda f: f.order.key)),
            rejections=tuple(sorted(rejections, key=lambda r: r.order.key)),
        )

    def _execute_batch(self, orders: Sequence[Order]) -> BatchResult:
        open_orders = [
            o
            for o in orders
            if o.market not in self.closed
            and 0 <= o.market < len(self.makers)
            and not self.ledger.is_settled(o.market)
        ]
        late = [Rejection(o, "closed") for o in orders if o not in open_orders]
        ledger = self.ledger
        traders = {o.trader for o in open_orders}
        cash = {t: ledger.cash(t) for t in traders}
        held = {
            (o.trader, o.market, o.outcome): ledger.position(o.trader, o.market, o.outcome)
            for o in open_orders
        }
        result = _clear_batch_memo(
            tuple(self.makers),
            tuple(open_orders),
            self.fee_per_share,
            tuple(sorted(cash.items())),
            tuple(sorted(held.items())),
        )
        # fills that pay the maker first: a thinly funded maker pays sellers from them
        for fill in sorted(result.fills, key=lambda f: (f.cash < 0, f.order.key)):
            ledger.apply_fill(fill, maker=maker_account(fill.order.market))
        self.makers = list(result.makers)
        if not late:
            return result
        rejections = tuple(sorted([*result.rejections, *late], key=lambda r: r.order.key))
        return replace(result, rejections=rejections)

    def commit(self, trader: int, commitment: bytes, deposit: int, *, t: float) -> bool:
        """Record a commitment made at ``t`` and escrow its deposit; False if unpaid.

        ``trader`` is the sender as sent (a one-time address pays from the account behind it).
        """
        account = self.pool.owner(trader)
        if commitment in self.commitments or self.ledger.cash(account) < deposit:
            return False
        self.ledger.transfer(account, ESCROW, deposit)
        self.commitments[commitment] = (trader, deposit, t)
        return True

    def expired(self, commitment: bytes, t: float) -> bool:
        """Whether the commitment's reveal deadline has passed at ``t`` (never without one)."""
        entry = self.commitments.get(commitment)
        deadline = self.reveal_deadline_s
        return entry is not None and deadline is not None and t > entry[2] + deadline

    def reveal(
        self,
        order: Order,
        salt: bytes,
        commitment: bytes,
        *,
        t: float,
        meter: CryptoMeter | None = None,
    ) -> Fill | Rejection:
        """Open a commitment at ``t``: refund its deposit and execute the order it hides.

        A reveal after the deadline is rejected as ``late`` and the deposit forfeited to the
        treasury at once. A reveal that does not open its commitment, or comes from another
        trader, is rejected as ``invalid`` and the deposit stays in escrow until it is forfeited
        after the deadline.
        """
        entry = self.commitments.get(commitment)
        if entry is None or entry[0] != order.trader:
            return Rejection(order, "invalid")
        try:
            open_commitment(commitment, order.encode(), salt, meter=meter)
        except CryptoError:
            return Rejection(order, "invalid")
        if self.expired(commitment, t):
            self.forfeit(commitment, t=t)
            return Rejection(order, "late")
        del self.commitments[commitment]
        self.ledger.transfer(ESCROW, self.pool.owner(order.trader), entry[1])
        return self.execute(order)

    def forfeit(self, commitment: bytes, *, t: float) -> bool:
        """Move an unrevealed commitment's deposit to the treasury, once its deadline passed.

        False, changing nothing, for an unknown commitment or one still within its deadline.
        """
        if not self.expired(commitment, t):
            return False
        _, deposit, _ = self.commitments.pop(commitment)
        self.ledger.transfer(ESCROW, TREASURY, deposit)
        return True

    def close(self, market: int) -> None:
        """Stop trading in ``market`` (its close time has passed)."""
        self.closed.add(market)

    def settle(self, settlement: Settlement) -> dict[int, int]:
        """Apply one settlement step; returns what it paid out by account.

        A step that settles the market pays the winning shares and releases the market's bonds
        (see :func:`bond_release`). A step the state does not allow (any step on a settled
        market, a certificate while an optimistic request is still open, a late or second
        dispute, an unpaid bond, an outcome out of range) changes nothing and returns ``{}``;
        every step that changed the state is appended to :attr:`applied`.
        """
        s = settlement
        if s.kind == "evidence":
            return self._slash(s)
        if not (0 <= s.market < len(self.makers) and 0 <= s.outcome < len(self.makers[s.market].q)):
            return {}
        if self.ledger.is_settled(s.market):
            return {}  # a market is paid out once
        match s.kind:
            case "certificate":
                paid = self._certificate(s)
            case "propose":
                paid = self._propose(s)
            case "dispute":
                paid = self._dispute(s)
            case "expire":
                paid = self._expire(s)
        if paid is None:
            return {}
        self.applied.append(s)
        return paid

    def _slash(self, s: Settlement) -> dict[int, int]:
        """Take a piece of evidence once; the first against a reporter slashes its account."""
        if len(s.voters) != 1 or not 0 <= s.market < len(self.makers):
            return {}
        key = s.accused()
        if key in self.evidence:
            return {}
        self.evidence.add(key)
        self.applied.append(s)
        signer = s.voters[0]
        if signer not in self.slashed:
            stake = self.ledger.cash(reporter_account(signer))
            self.ledger.transfer(reporter_account(signer), TREASURY, stake)
            self.slashed[signer] = stake
        return {}

    def _certificate(self, s: Settlement) -> dict[int, int] | None:
        requests = self.requests.get(s.market, ())
        if requests and not (len(requests) == 2 and requests[-1].disputed):
            return None  # the optimistic oracle decides unless both proposals were disputed
        return self._finalize(s.market, s.outcome)

    def _propose(self, s: Settlement) -> dict[int, int] | None:
        requests = self.requests.get(s.market, ())
        awaiting = not requests or (len(requests) == 1 and requests[0].disputed)
        if self.terms is None or len(s.voters) != 1 or not awaiting or s.request != len(requests):
            return None
        if not self._escrow(s.voters[0], self.terms.bond):
            return None
        proposal = Request(s.voters[0], s.outcome, self.terms.bond, s.t)
        self.requests[s.market] = (*requests, proposal)
        return {}

    def _dispute(self, s: Settlement) -> dict[int, int] | None:
        requests = self.requests.get(s.market, ())
        if self.terms is None or len(s.voters) != 1 or s.request != len(requests) - 1:
            return None
        last = requests[-1]
        late = s.t >= last.t + self.terms.liveness
        if last.disputed or late or s.voters[0] == last.proposer:
            return None
        if not self._escrow(s.voters[0], last.bond):
            return None
        self.requests[s.market] = (*requests[:-1], replace(last, disputer=s.voters[0]))
        return {}

    def _expire(self, s: Settlement) -> dict[int, int] | None:
        requests = self.requests.get(s.market, ())
        if self.terms is None or s.request != len(requests) - 1:
            return None
        last = requests[-1]
        if last.disputed or s.t < last.t + self.terms.liveness:
            return None
        return self._finalize(s.market, last.outcome)

    def _escrow(self, reporter: int, bond: int) -> bool:
        account = reporter_account(reporter)
        if self.ledger.cash(account) < bond:
            return False
        self.ledger.transfer(account, BOND_ESCROW, bond)
        return True

    def _finalize(self, market: int, outcome: int) -> dict[int, int]:
        """Pay the winning shares, close the market, release its bonds."""
        paid = self.ledger.settle(market, outcome, maker=maker_account(market))
        self.closed.add(market)
        for request in self.requests.get(market, ()):
            for account, micro in bond_release(request, outcome):
                self.ledger.transfer(BOND_ESCROW, account, micro)
                paid[account] = paid.get(account, 0) + micro
        return paid

    def prices(self, market: int) -> tuple[float, ...]:
        """Current prices of ``market``."""
        return self.makers[market].prices()

    def state_hash(self) -> bytes:
        """SHA-256 over the ledger's hash and every maker's outstanding shares."""
        digest = hashlib.sha256(self.ledger.state_hash())
        for maker in self.makers:
            digest.update(struct.pack(f">{len(maker.q)}d", *maker.q))
        digest.update(struct.pack(f">{len(self.closed)}I", *sorted(self.closed)))
        for commitment, (trader, deposit, t) in sorted(self.commitments.items()):
            digest.update(commitment + struct.pack(">qqd", trader, deposit, t))
        for signer, market, round_, step in sorted(self.evidence):
            digest.update(struct.pack(">qqq", signer, market, round_) + step.encode())
        for epoch, sealed in sorted(self.sealed.items()):
            digest.update(struct.pack(">qq", epoch, len(sealed)))
            for sender, blob in sealed:
                digest.update(struct.pack(">q", sender) + hashlib.sha256(blob).digest())
        for market, requests in sorted(self.requests.items()):
            for r in requests:
                digest.update(struct.pack(">qqqqdq", market, r.proposer, r.outcome, r.bond, r.t,
                                          r.disputer))  # fmt: skip
        return digest.digest()
