"""Frozen value objects shared by every mechanism: money, orders and fills.

Money inside the ledger is an integer number of micro-units (one unit = 1,000,000 micro), so
that conservation can be checked exactly; shares are integer micro-shares for the same reason.
Scenario files and result tables speak in units.

An order has one fixed binary encoding (:meth:`Order.encode`), the bytes that travel on the
simulated wire, so that an adversary sees exactly the sizes a real network would show it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MICRO = 1_000_000
"""Micro-units per unit of money, and micro-shares per share."""

_ORDER_FORMAT = ">BHBqIIQI"
_ORDER_VERSION = 1
ORDER_WIRE_BYTES = struct.calcsize(_ORDER_FORMAT)
"""Size in bytes of an encoded order (32)."""


def to_micro(units: float) -> int:
    """Convert units to integer micro-units, rounding to the nearest micro-unit."""
    return round(units * MICRO)


def to_units(micro: int) -> float:
    """Convert integer micro-units back to units."""
    return micro / MICRO


@dataclass(frozen=True, slots=True)
class Order:
    """A trader's instruction to buy (shares > 0) or sell (shares < 0) one outcome of one market.

    Attributes:
        trader: the paying account.
        nonce: unique per trader; ``(trader, nonce)`` identifies the order in the whole run.
        market: market index.
        outcome: outcome index within the market.
        shares: micro-shares, positive to buy, negative to sell.
        limit_price: micro-units per share; a buy pays at most this on average, a sell
            receives at least this on average.
        priority_fee: micro-units paid to be sequenced ahead of lower fees.
    """

    trader: int
    nonce: int
    market: int
    outcome: int
    shares: int
    limit_price: int
    priority_fee: int = 0

    @property
    def key(self) -> tuple[int, int]:
        """The order's identity in the run: ``(trader, nonce)``."""
        return (self.trader, self.nonce)

    @property
    def is_buy(self) -> bool:
        """True for a buy, False for a sell."""
        return self.shares > 0

    def encode(self) -> bytes:
        """The order's fixed 32-byte wire encoding (big-endian, version first)."""
        return struct.pack(
            _ORDER_FORMAT,
            _ORDER_VERSION,
            self.market,
            self.outcome,
            self.shares,
            self.limit_price,
            self.trader,
            self.nonce,
            self.priority_fee,
        )

    @classmethod
    def decode(cls, data: bytes) -> Order:
        """Parse :meth:`encode`'s bytes; raises ``ValueError`` on a wrong size or version."""
        if len(data) != ORDER_WIRE_BYTES:
            raise ValueError(f"an order is {ORDER_WIRE_BYTES} bytes, got {len(data)}")
        version, market, outcome, shares, limit, trader, nonce, fee = struct.unpack(
            _ORDER_FORMAT, data
        )
        if version != _ORDER_VERSION:
            raise ValueError(f"unknown order encoding version {version}")
        return cls(trader, nonce, market, outcome, shares, limit, fee)


@dataclass(frozen=True, slots=True)
class Fill:
    """The result of executing one order against a market maker.

    Attributes:
        order: the order executed.
        shares: micro-shares actually traded (signed like the order's).
        cash: micro-units the trader paid (positive) or received (negative), fees included.
        fee: the part of ``cash`` that is the market's fee.
    """

    order: Order
    shares: int
    cash: int
    fee: int

    @property
    def average_price(self) -> float:
        """Units paid per share, fee excluded."""
        return (self.cash - self.fee) / self.shares if self.shares else float("nan")
