"""``bft``: every market is settled by Tendermint consensus among the reporters from ``resolve_s``.

See :mod:`sim.settlement.tendermint` for one reporter's rules, :mod:`sim.settlement.rounds` for
the driver and :mod:`sim.settlement.rules` for messages and checks: ``⌊2n/3⌋ + 1`` precommits of
distinct reporters on one value in one round make a certificate, which every replica verifies
before it pays out. With ``b`` Byzantine reporters, safety (no two certificates for different
outcomes of a market) holds whatever they do while ``b < 2q − n`` (two quorums' smallest
overlap, more than ``f`` for every ``n``); liveness needs ``b ≤ n − q = f``, the network healed
and ``q`` honest live reporters who observed the same outcome.
Honest sequencers also put equivocation evidence on chain, and the chain slashes the signer.
"""

from __future__ import annotations

from sim.chain.blocks import SettleTx, Tx
from sim.settlement.protocol import SettlementProtocol


class BFT(SettlementProtocol):
    """Tendermint per market: signed steps, a ``⌊2n/3⌋ + 1`` quorum, locks, growing timeouts."""

    protocol = "bft"
    collects_evidence = True

    def start(self) -> None:
        """Start consensus on every market at ``resolve_s``."""
        self.sim.after(self.market.resolve_s, self._open)

    def _open(self) -> None:
        for market in range(self.market.count):
            self.voting.open(market)

    def propose(self, proposer: int) -> list[Tx]:
        """The certificates and evidence the proposer holds that the chain has not taken."""
        if not self.up(proposer):
            return []
        held = [*self.voting.certificates_for(proposer), *self.voting.evidence_for(proposer)]
        return [SettleTx(step) for step in held]
