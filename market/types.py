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


_COMPACT_FIELDS = ("market", "outcome", "shares", "limit_price", "trader", "nonce", "priority_fee")

MAX_COMPACT_BYTES = 11 * len(_COMPACT_FIELDS)
"""Upper bound on :func:`encode_compact`'s output (a tag and up to ten varint bytes per field)."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_compact(order: Order) -> bytes:
    """A protobuf-style encoding: tagged varints, fields equal to 0 omitted.

    This is how many chains serialise transactions, and it is why ciphertext *sizes* can leak
    content: outcome 0 costs nothing, outcome 1 two bytes, a large order more bytes than a small
    one. Encrypted order flows encrypt this encoding; padding (``privacy.pad_to_bytes``) hides it.
    """
    out = bytearray()
    for tag, name in enumerate(_COMPACT_FIELDS, start=1):
        value = getattr(order, name)
        if value:
            zigzag = (value << 1) ^ (value >> 63)  # signed shares stay short
            out += bytes([tag << 3]) + _varint(zigzag)
    return bytes(out)


def decode_compact(data: bytes) -> Order:
    """Parse :func:`encode_compact`'s bytes; raises ``ValueError`` on malformed input."""
    values = dict.fromkeys(_COMPACT_FIELDS, 0)
    i = 0
    while i < len(data):
        tag = data[i] >> 3
        if not 1 <= tag <= len(_COMPACT_FIELDS) or data[i] & 7:
            raise ValueError(f"bad field tag {data[i]}")
        i += 1
        value, shift = 0, 0
        while True:
            if i >= len(data) or shift > 63:
                raise ValueError("truncated varint")
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        values[_COMPACT_FIELDS[tag - 1]] = (value >> 1) ^ -(value & 1)
    return Order(
        values["trader"],
        values["nonce"],
        values["market"],
        values["outcome"],
        values["shares"],
        values["limit_price"],
        values["priority_fee"],
    )
