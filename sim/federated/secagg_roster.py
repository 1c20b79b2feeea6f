"""Secure aggregation's public round setup and messages (see :mod:`sim.federated.secagg`).

The roster (who holds shares, who masks, the threshold and the fixed-point encoding), the
abort that ends a round which cannot finish securely, and one frozen value per message kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sim.federated.secagg_crypto import ClientKeys, KeyAdvert, Share, fixed_point_scale
from sim.federated.strategy import AbortReason

MIN_PARTICIPANTS = 3
"""Below this the sum would reveal a single other client's input to any participant."""


class SecAggAbortError(Exception):
    """The round cannot finish securely; ``reason`` says why (an :data:`AbortReason`)."""

    def __init__(self, reason: AbortReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: AbortReason = reason


def threshold(holders: int) -> int:
    """Shares needed to rebuild a secret among ``holders`` holders: a strict majority."""
    return holders // 2 + 1


@dataclass(frozen=True, slots=True, eq=False)
class Roster:
    """The round's public setup: who holds shares, who masks, the threshold and the encoding.

    Attributes:
        round: the round number (part of every mask label, digest and envelope).
        holders: ``U1`` in order; the share with x-coordinate ``i + 1`` goes to ``holders[i]``.
        members: ``U2``, the clients whose shares were delivered; masks run among these.
        adverts: every holder's public keys.
        threshold: shares needed to rebuild a secret.
        dim: vector length.
        bound: per-coordinate clamp of the inputs.
    """

    round: int
    holders: tuple[int, ...]
    members: tuple[int, ...]
    adverts: Mapping[int, KeyAdvert]
    threshold: int
    dim: int
    bound: float

    @property
    def scale(self) -> float:
        """The fixed-point scale for ``len(members)`` inputs."""
        return fixed_point_scale(len(self.members), self.bound)

    def x_of(self, holder: int) -> int:
        """The Shamir x-coordinate of ``holder``'s shares."""
        return self.holders.index(holder) + 1


def make_roster(
    round_number: int, adverts: Sequence[KeyAdvert], *, dim: int, bound: float
) -> Roster:
    """The roster of everyone who advertised keys; aborts below :data:`MIN_PARTICIPANTS`."""
    by_client = {a.client: a for a in adverts}
    holders = tuple(sorted(by_client))
    if len(holders) < MIN_PARTICIPANTS:
        raise SecAggAbortError("too_few_clients", f"{len(holders)} < {MIN_PARTICIPANTS}")
    return Roster(round_number, holders, holders, by_client, threshold(len(holders)), dim, bound)


def with_members(roster: Roster, sharers: Sequence[int]) -> Roster:
    """Narrow the masking members to the holders whose shares were delivered (``U2``)."""
    members = tuple(sorted(set(sharers) & set(roster.holders)))
    if len(members) < roster.threshold:
        raise SecAggAbortError("below_threshold", f"{len(members)} sharers < t={roster.threshold}")
    return replace(roster, members=members)


@dataclass(frozen=True, slots=True, eq=False)
class ShareCommitment:
    """Published by the owner to the server: digests of ``b_u`` and of every share."""

    owner: int
    round: int
    seed_digest: bytes
    share_digests: Mapping[int, tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True, eq=False)
class MaskedInput:
    """``y_u``: all the server ever sees of client ``u``'s vector, and its clamp count.

    ``clamped`` is how many coordinates the client clamped to the roster's bound before
    encoding, reported in the clear beside ``y_u`` so that a round whose sum is distorted by
    the clamp is flagged rather than silently ``completed``. It reveals only that count.
    """

    client: int
    round: int
    masked: np.ndarray
    clamped: int = 0


@dataclass(frozen=True, slots=True)
class UnmaskRequest:
    """The server's claim of who survived and who dropped."""

    round: int
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Reveal:
    """A survivor's answer: seed shares of survivors, key shares of dropped clients."""

    holder: int
    round: int
    seed_shares: Mapping[int, Share]
    key_shares: Mapping[int, Share]


@dataclass(frozen=True, slots=True, eq=False)
class ClientRound:
    """A client's private state within one round."""

    keys: ClientKeys
    roster: Roster
    seed: int
    held: Mapping[int, tuple[Share, Share]]
    answered: UnmaskRequest | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SecureSum:
    """The unmasked sum and what the server had to do to get it.

    Attributes:
        total: the (dequantised) sum of the survivors' inputs.
        survivors: clients whose inputs are in the sum.
        dropped: members whose masks were removed with their revealed mask keys.
        rejected: ``(holder, owner, kind)`` of each revealed share that failed its digest
            (shares are checked in holder order until ``t`` valid ones are found).
        clamped: coordinates the survivors clamped to the bound (their reported counts summed).
    """

    total: np.ndarray
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    rejected: tuple[tuple[int, int, str], ...]
    clamped: int = 0
