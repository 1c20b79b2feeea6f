"""``commit_reveal``: a hash commitment fixes an order's place; the order is revealed later.

A trader diffuses a commitment ``SHA-256(order, salt)`` with a deposit. Once the block holding
it reaches the trader's node, the trader diffuses the order and its salt. Sequencers include
reveals in commitment order (height, then position in the block), so nobody who reads a reveal
can get ahead of it: reading is still possible (reveals are plaintext before they execute), but
front-running by ordering is not. A commitment not revealed within ``privacy.reveal_deadline_s``
of its block forfeits its deposit to the treasury. A trader may also hold a commitment and reveal
it when it chooses (:meth:`CommitReveal.hold`): the front-runner's speculative options.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from market.crypto import commit
from market.execute import Rejection
from market.types import Fill, Order, to_micro
from sim.chain.blocks import Block, CommitTx, ForfeitTx, RevealTx, Tx, TxResult
from sim.chain.mempool import Mempools
from sim.host.component import Genesis, OrderFlow
from sim.host.host import Host
from sim.net.network import Message, unexpected
from sim.results.records import OrderRecord
from sim.scenario import Privacy

SALT_BYTES = 16


class CommitReveal(OrderFlow):
    """Commit first, reveal after the commitment is on chain, execute in commitment order."""

    mode = "commit_reveal"
    can_front_run = False

    def __init__(self, sim: Host, *, privacy: Privacy, watchers: frozenset[int]) -> None:
        super().__init__(sim, privacy=privacy, watchers=watchers)
        self.randbytes = sim.streams.randbytes("salts")
        self.commits: Mempools[CommitTx] = Mempools(sim.validators)
        self.reveals: Mempools[RevealTx] = Mempools(sim.validators)
        self.open: dict[bytes, tuple[int, int, float]] = {}
        """Commitments on chain, neither revealed nor forfeited: height, index, block time."""
        self.owner: dict[bytes, OrderRecord] = {}
        self.waiting: dict[bytes, RevealTx] = {}
        self.listening: set[int] = set()
        self.timing = sim.streams.python("reveal-timing")
        """When traders reveal, and which never do (``reveal_delay_s``, ``reveal_failure``)."""
        self.commitment_of: dict[tuple[int, int], bytes] = {}
        self.to_hold: set[tuple[int, int]] = set()
        self.held: dict[tuple[int, int], RevealTx] = {}
        """Speculative commitments whose trader reveals them only when it chooses to."""

    def genesis(self) -> Genesis:
        """The chain judges every reveal and forfeit against the deadline, on every replica."""
        return Genesis(reveal_deadline_s=self.privacy.reveal_deadline_s)

    def submit(self, record: OrderRecord) -> None:
        """Diffuse a commitment (and escrow the deposit once it is on chain)."""
        salt = self.randbytes(SALT_BYTES)
        order = self.public_order(record)
        commitment = commit(order.encode(), salt, meter=self.sim.meter)
        deposit = to_micro(self.privacy.deposit)
        tx = CommitTx(order.trader, commitment, deposit)
        self.owner[commitment] = record
        self.commitment_of[order.key] = commitment
        reveal = RevealTx(order, salt, commitment)
        if record.order.key in self.to_hold:
            self.to_hold.discard(record.order.key)
            self.held[order.key] = reveal
        else:
            self.waiting[commitment] = reveal
        if record.node not in self.listening:
            self.listening.add(record.node)
            self.sim.on_block(record.node, partial(self._block_at_trader, record.node))

        record.wire_bytes = tx.size
        record.flood = self.sim.spread(record.node, tx, to=self.receive, listeners=self.listeners())

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """A commitment or a reveal reaches ``node``; only a reveal can be read."""
        match msg:
            case CommitTx(commitment=commitment):
                if node in self.watchers:
                    self.overheard(self.owner[commitment], msg, read=None)
                self.commits.add(node, commitment, msg, self.sim.now)
            case RevealTx(order=order, commitment=commitment):
                record = self.owner[commitment]
                self.seen_plaintext(record, node)
                if node in self.watchers:
                    self.overheard(record, msg, read=order)
                self.reveals.add(node, commitment, msg, self.sim.now)
            case _:
                unexpected(msg)

    def _block_at_trader(self, node: int, block: Block) -> None:
        """A trader reveals once the block holding its commitment reaches its node.

        It waits an exponential delay of mean ``privacy.reveal_delay_s`` first (at once when 0),
        and with probability ``privacy.reveal_failure`` it never reveals at all.
        """
        for tx in block.txs:
            if isinstance(tx, CommitTx) and tx.commitment in self.waiting:
                record = self.owner[tx.commitment]
                if record.node == node and tx.commitment in self.open:
                    reveal = self.waiting.pop(tx.commitment)
                    failure, mean = self.privacy.reveal_failure, self.privacy.reveal_delay_s
                    if failure > 0 and self.timing.random() < failure:
                        continue  # it never reveals: the commitment will be forfeited
                    if mean > 0:
                        delay = self.timing.expovariate(1.0 / mean)
                        self.sim.after(delay, partial(self._reveal, record, reveal))
                    else:
                        self._reveal(record, reveal)

    def hold(self, order: Order) -> None:
        """The next submission of ``order`` commits it without revealing (see :meth:`reveal_held`).

        A speculative commitment: its trader pays the deposit for the option of revealing it
        later, and forfeits it if it never does.
        """
        self.to_hold.add(order.key)

    def position(self, key: tuple[int, int]) -> tuple[int, int] | None:
        """Where order ``key``'s commitment (key as sent) is on chain (height, index), if open."""
        commitment = self.commitment_of.get(key)
        if commitment is None or commitment not in self.open:
            return None
        return self.open[commitment][:2]

    def committed_at(self, key: tuple[int, int]) -> float | None:
        """The block time of order ``key``'s open commitment (None: not on chain, or closed)."""
        commitment = self.commitment_of.get(key)
        if commitment is None or commitment not in self.open:
            return None
        return self.open[commitment][2]

    def reveal_held(self, key: tuple[int, int]) -> bool:
        """Reveal a held commitment now (False when there is none, or it is not on chain)."""
        reveal = self.held.get(key)
        if reveal is None or reveal.commitment not in self.open:
            return False
        del self.held[key]
        self._reveal(self.owner[reveal.commitment], reveal)
        return True

    def _reveal(self, record: OrderRecord, reveal: RevealTx) -> None:
        self.sim.spread(record.node, reveal, to=self.receive, listeners=self.listeners())

    def propose(self, proposer: int) -> list[Tx]:
        """New commitments, reveals in commitment order, forfeits of expired commitments.

        The proposer includes every reveal it holds of a commitment on chain, late or not: the
        chain rejects a late one (and forfeits its deposit). A commitment past its deadline and
        not revealed in this block is forfeited.
        """
        now = self.sim.now
        deadline = self.privacy.reveal_deadline_s
        commits = [tx for tx, _ in self.commits.take(proposer, order=lambda _tx, t: t)]
        reveals = [
            tx
            for tx, _ in self.reveals.take(
                proposer,
                order=lambda tx, _t: self.open[tx.commitment][:2],
                ready=lambda tx: tx.commitment in self.open,
            )
        ]
        for reveal in reveals:
            record = self.sim.by_key[reveal.order.key]
            if not record.final:
                record.sequenced(now)
        revealed = {r.commitment for r in reveals}
        expired = sorted(
            c for c, (_, _, t) in self.open.items() if now > t + deadline and c not in revealed
        )
        return [*commits, *reveals, *(ForfeitTx(c) for c in expired)]

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Place commitments, record reveals' fills and rejected commitments."""
        for index, (tx, result) in enumerate(zip(block.txs, results, strict=True)):
            match tx:
                case CommitTx(commitment=commitment, deposit=deposit) if result is True:
                    self.open[commitment] = (block.height, index, block.t)
                    owner = self.owner[commitment]
                    owner.deposit, owner.deposit_state = deposit, "escrowed"
                case CommitTx(commitment=commitment):
                    self.waiting.pop(commitment, None)
                    record = self.owner[commitment]
                    record.finish(Rejection(record.order, "funds"), height=block.height, t=block.t)
                case RevealTx(order=order, commitment=commitment) if isinstance(
                    result, Fill | Rejection
                ):
                    if not (isinstance(result, Rejection) and result.reason == "invalid"):
                        self.open.pop(commitment, None)  # opened (or late): it is gone
                        late = isinstance(result, Rejection) and result.reason == "late"
                        self.owner[commitment].deposit_state = "forfeited" if late else "refunded"
                    record = self.sim.by_key[order.key]
                    if not record.final:
                        record.finish(result, height=block.height, t=block.t)
                case ForfeitTx(commitment=commitment) if result is True:
                    self.open.pop(commitment, None)
                    self.waiting.pop(commitment, None)
                    record = self.owner[commitment]
                    record.deposit_state = "forfeited"
                    if not record.final:  # an invalid reveal already rejected its order
                        record.forfeit(height=block.height, t=block.t)
