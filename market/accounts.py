"""Ledger account numbers: traders, market makers, reporters and the protocol's own accounts.

Accounts are plain integers. Traders use their trader ids ``0 .. traders-1``; the front-runner
and the forecaster, which trade like traders, follow them; every other kind of account lives in
its own range far above, so no id can ever collide.
"""

from __future__ import annotations

MAKER_BASE = 1 << 40
"""Maker accounts are ``MAKER_BASE + market``, far above any trader id."""

TREASURY = (1 << 41) - 1
"""The account that collects priority fees, forfeited deposits and the treasury's bond shares."""

ESCROW = (1 << 41) - 2
"""The account that holds commit-reveal deposits until the order is revealed or forfeited."""

BOND_ESCROW = (1 << 41) - 3
"""The account that holds optimistic-oracle bonds until the market they back is final."""

REPORTER_BASE = 3 << 39
"""Reporter accounts are ``REPORTER_BASE + node``: above every maker, below the treasury."""


def frontrunner_account(traders: int) -> int:
    """The front-runner's account: the first number after the ``traders`` trader ids.

    Kept small on purpose, like a trader's: an order's compact encoding writes the account as a
    varint, so an account from a far range would make the adversary's own orders a few bytes
    longer than everyone else's.
    """
    return traders


def forecaster_account(traders: int) -> int:
    """The federated forecaster's trading account: after the front-runner's (see there)."""
    return traders + 1


def copycat_account(traders: int) -> int:
    """The copycat's trading account: after the forecaster's (see :func:`frontrunner_account`)."""
    return traders + 2


def reporter_account(node: int) -> int:
    """The ledger account of the reporter at ``node`` (its endowment, its bonds)."""
    return REPORTER_BASE + node


def maker_account(market: int) -> int:
    """The ledger account of market ``market``'s market maker."""
    return MAKER_BASE + market


ONE_TIME_BASE = 1 << 31
"""One-time addresses (``privacy.unlinkable_senders``) are ``ONE_TIME_BASE + order id``: above
every trader id, below every maker account, and within an order's 32-bit trader field."""


class ShieldedPool:
    """Which account stands behind each one-time address: what a shielded pool would prove.

    With unlinkable senders every public byte of an order (its envelope, commitment, plaintext,
    ciphertext and its place in a batch) names a fresh address, never the trader's account. A
    deployed shielded pool would hold notes and have the spender prove in zero knowledge that it
    owns what the address spends; the simulator keeps the mapping instead. The exchange consults
    it to book trades against the right account, every replica consults the same pool (it is the
    proofs' stand-in, not replicated state, so it is not in the state hash), and none of the
    adversary's estimators reads it.
    """

    __slots__ = ("_owners",)

    def __init__(self) -> None:
        self._owners: dict[int, int] = {}

    def mint(self, account: int, order_id: int) -> int:
        """A fresh address for ``account``'s order ``order_id`` (the same one if asked again)."""
        address = ONE_TIME_BASE + order_id
        if not ONE_TIME_BASE <= address < MAKER_BASE or account >= ONE_TIME_BASE:
            raise ValueError(f"no one-time address for order {order_id} of account {account}")
        if self._owners.setdefault(address, account) != account:
            raise ValueError(f"address {address} already belongs to another account")
        return address

    def owner(self, address: int) -> int:
        """The account behind ``address``; an account that is no one-time address is its own."""
        return self._owners.get(address, address)
