"""The error tree of the market package (drawn in ``market/__init__.py``)."""


class MarketError(Exception):
    """Base of every error the market package raises on purpose."""


class InsufficientFunds(MarketError):
    """An account cannot pay for a trade, a fee, a deposit or a bond."""


class InvalidTrade(MarketError):
    """A trade the market cannot accept: unknown outcome, zero shares, selling what is not held."""


class CryptoError(MarketError):
    """A ciphertext, key share, signature or commitment failed to verify."""
