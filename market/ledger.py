"""Cash and positions in exact integer micro-units, the state every replica keeps.

Money only enters through :meth:`Ledger.mint` (genesis issuance, counted in ``issued``) and then
only moves: trades pay the market's maker, settlement pays winners from the maker. So
``total_cash() == issued`` at every step, and :meth:`Ledger.conservation_error` is exactly 0
unless something created or destroyed money. Every operation checks everything before it
changes anything, so a failed call leaves the ledger as it was.

Replicas compare :meth:`Ledger.state_hash`, a SHA-256 over a canonical, sorted encoding, so equal
states hash equally whatever order the dicts were filled in.
"""

from __future__ import annotations

import hashlib
import struct

from market.errors import InsufficientFunds, InvalidTrade
from market.types import Fill

_HASH_DOMAIN = b"veilcast/ledger/v1"


def _encode_ints(values: list[int]) -> bytes:
    """An injective encoding of integers: 8-byte words when all fit, self-delimiting otherwise.

    The first is one C call (fast for thousands of accounts); a leading tag tells them apart.
    """
    try:
        return b"q" + struct.pack(f">{len(values)}q", *values)
    except struct.error:  # beyond 64 bits: 9.2e12 units, never in a sane run, but stay exact
        return b"v" + b"".join(_int_bytes(value) for value in values)


def _int_bytes(value: int) -> bytes:
    """Self-delimiting bytes of any integer: 2-byte length, then big-endian two's complement."""
    size = value.bit_length() // 8 + 1
    return struct.pack(">H", size) + value.to_bytes(size, "big", signed=True)


class Ledger:
    """Balances (micro-units) and positions (micro-shares) of integer accounts.

    Positions are keyed ``(account, market, outcome)`` and never negative; a position that
    reaches zero is dropped, so "absent" and "zero" are the same state. An account that has
    ever held cash stays listed, with 0 if it spent everything.
    """

    __slots__ = ("_cash", "_issued", "_positions", "_settled")

    def __init__(self) -> None:
        self._cash: dict[int, int] = {}
        self._positions: dict[tuple[int, int, int], int] = {}
        self._settled: dict[int, int] = {}
        self._issued = 0

    def mint(self, account: int, micro: int) -> None:
        """Create ``micro`` micro-units in ``account``: genesis only, counted in ``issued``."""
        if micro < 0:
            raise ValueError(f"cannot mint a negative amount ({micro})")
        self._cash[account] = self._cash.get(account, 0) + micro
        self._issued += micro

    def cash(self, account: int) -> int:
        """Micro-units held by ``account`` (0 for an unknown account)."""
        return self._cash.get(account, 0)

    def position(self, account: int, market: int, outcome: int) -> int:
        """Micro-shares of ``outcome`` in ``market`` held by ``account``."""
        return self._positions.get((account, market, outcome), 0)

    def transfer(self, src: int, dst: int, micro: int) -> None:
        """Move ``micro`` micro-units; :class:`InsufficientFunds` (no change) if src lacks it."""
        if micro < 0:
            raise ValueError(f"cannot transfer a negative amount ({micro})")
        if self.cash(src) < micro:
            raise InsufficientFunds(f"account {src} has {self.cash(src)}, needs {micro}")
        if micro == 0:
            return  # moving nothing must not list new accounts
        self._cash[src] = self.cash(src) - micro
        self._cash[dst] = self.cash(dst) + micro

    def apply_fill(self, fill: Fill, *, maker: int) -> None:
        """Book a fill: the trader pays ``fill.cash`` to ``maker``, its position by its shares.

        Raises:
            InvalidTrade: zero shares, a settled market, a negative outcome, the maker trading with
                itself, or a sale of more than the trader holds.
            InsufficientFunds: the trader cannot pay, or the maker cannot pay a seller.
        """
        order = fill.order
        trader, key = order.trader, (order.trader, order.market, order.outcome)
        if fill.shares == 0 or order.outcome < 0 or trader == maker:
            raise InvalidTrade(f"malformed fill for order {order.key}")
        if order.market in self._settled:
            raise InvalidTrade(f"market {order.market} is already settled")
        held = self._positions.get(key, 0)
        if held + fill.shares < 0:
            raise InvalidTrade(f"account {trader} holds {held}, cannot sell {-fill.shares}")
        payer, payee, amount = (
            (trader, maker, fill.cash) if fill.cash >= 0 else (maker, trader, -fill.cash)
        )
        self.transfer(payer, payee, amount)
        self._set_position(key, held + fill.shares)

    def settle(self, market: int, outcome: int, *, maker: int) -> dict[int, int]:
        """Pay every holder of ``outcome`` one micro-unit per micro-share, from ``maker``.

        Zeroes every position in ``market`` and marks it settled.

        Returns:
            The payouts by account (winners only, sorted by account).

        Raises:
            InvalidTrade: the market is already settled, the outcome is negative, or the maker
                cannot pay every winner (nothing is paid then).
        """
        if market in self._settled:
            raise InvalidTrade(f"market {market} is already settled")
        if outcome < 0:
            raise InvalidTrade(f"outcome {outcome} is negative")
        in_market = sorted(key for key in self._positions if key[1] == market)
        payouts = {key[0]: self._positions[key] for key in in_market if key[2] == outcome}
        owed = sum(payouts.values())
        if self.cash(maker) < owed:
            raise InvalidTrade(f"maker {maker} holds {self.cash(maker)}, owes {owed}")
        for account, amount in payouts.items():
            self.transfer(maker, account, amount)
        for key in in_market:
            del self._positions[key]
        self._settled[market] = outcome
        return payouts

    def is_settled(self, market: int) -> bool:
        """Whether ``market`` has been settled."""
        return market in self._settled

    def accounts(self) -> list[int]:
        """Every account that has held cash, sorted."""
        return sorted(self._cash)

    def total_cash(self) -> int:
        """Micro-units across all accounts."""
        return sum(self._cash.values())

    @property
    def issued(self) -> int:
        """Micro-units ever minted."""
        return self._issued

    def conservation_error(self) -> int:
        """``total_cash() − issued``: exactly 0 when no money was created or lost."""
        return self.total_cash() - self._issued

    def state_hash(self) -> bytes:
        """SHA-256 over issuance, cash, positions and settled markets, each sorted by key."""
        return hashlib.sha256(_HASH_DOMAIN + _encode_ints(self._canonical())).digest()

    def _canonical(self) -> list[int]:
        """The state as one flat list of integers, every section sorted and length-prefixed."""
        flat = [self._issued, len(self._cash)]
        for account in sorted(self._cash):
            flat += (account, self._cash[account])
        flat.append(len(self._positions))
        for key in sorted(self._positions):
            flat += (*key, self._positions[key])
        flat.append(len(self._settled))
        for market in sorted(self._settled):
            flat += (market, self._settled[market])
        return flat

    def copy(self) -> Ledger:
        """An independent ledger with the same state."""
        other = Ledger()
        other._cash = dict(self._cash)
        other._positions = dict(self._positions)
        other._settled = dict(self._settled)
        other._issued = self._issued
        return other

    def _set_position(self, key: tuple[int, int, int], micro_shares: int) -> None:
        """Store a position, dropping it at zero so absent and zero hash the same."""
        if micro_shares:
            self._positions[key] = micro_shares
        else:
            self._positions.pop(key, None)
