"""``bft``: every market is settled by rounds of signed votes, from ``resolve_s`` on.

See :mod:`sim.settlement.rounds` for the rounds and :mod:`sim.settlement.rules` for the
rules: ``⌊2n/3⌋ + 1`` signatures of distinct reporters on one outcome make a certificate, which
every replica verifies before it pays out. With fewer than a third of the reporters Byzantine and
enough honest ones able to reach each other, every market settles to the true outcome; with a
third or more the run shows what happens (no finality, or a wrong one) and records it.
"""

from __future__ import annotations

from sim.chain.blocks import SettleTx, Tx
from sim.settlement.protocol import SettlementProtocol


class BFT(SettlementProtocol):
    """Signed votes, a ``⌊2n/3⌋ + 1`` quorum, rounds with timeouts and a new leader each."""

    protocol = "bft"

    def start(self) -> None:
        """Open voting on every market at ``resolve_s``."""
        self.sim.after(self.market.resolve_s, self._open)

    def _open(self) -> None:
        for market in range(self.market.count):
            self.voting.open(market)

    def propose(self, proposer: int) -> list[Tx]:
        """The certificates the proposer holds for markets the chain has not settled."""
        if not self.up(proposer):
            return []
        return [SettleTx(cert) for cert in self.voting.certificates_for(proposer)]
