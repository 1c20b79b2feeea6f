"""The pure market layer of veilcast: values in, values out.

Nothing here knows a clock, a network, a file or a hidden random source. Randomness, where a
mechanism needs it (key generation, nonces), is passed in by the caller, which derives it from
the run's seed.

Errors raised by this package form one tree::

    MarketError
    ├── InsufficientFunds      an account cannot pay for what it asked
    ├── InvalidTrade           a trade the market cannot accept (bad outcome, shares, limit)
    └── CryptoError            a ciphertext, share, signature or commitment fails to verify
"""

from market.errors import CryptoError, InsufficientFunds, InvalidTrade, MarketError

__all__ = ["CryptoError", "InsufficientFunds", "InvalidTrade", "MarketError"]
