"""All randomness of a run, from one root seed, split into named streams.

Every component draws from its own stream, spawned from the run's seeds by name, so adding a draw
in one component never shifts the numbers another component sees. There is no global seed and
no clock anywhere in the simulation.

Two seeds per run (SPEC section 2):

* the **world seed** depends on the root seed and the replication only. The world (topology,
  link latencies, roles, true probabilities, outcomes, signals, order times and sizes, training
  data) comes from it, so every sweep point of one replication sees the same world;
* the **run seed** depends on the root seed, the sweep point and the replication. What differs
  by setting (crypto keys and nonces, protocol randomness) comes from it.

Cryptographic keys of a run derive from the run seed too. They are *simulation keys*: anyone who
knows the scenario can recompute them, which is what makes runs reproducible, and why they must
never protect anything real.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import numpy as np


def derive_seed(root: int, *labels: str | int) -> int:
    """A 63-bit seed derived from ``root`` and a path of labels, stable across processes.

    Uses SHA-256 rather than Python's ``hash`` (which is salted per process).
    """
    text = "/".join([str(root), *(str(label) for label in labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


class Streams:
    """Named random streams spawned from one seed.

    ``streams.numpy("latency")`` always returns a fresh generator for that name, seeded the same
    way, so callers should fetch a stream once and keep it.
    """

    __slots__ = ("seed",)

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def numpy(self, name: str) -> np.random.Generator:
        """A numpy generator for ``name`` (PCG64 from a SeedSequence of the derived seed)."""
        return np.random.default_rng(np.random.SeedSequence(derive_seed(self.seed, name)))

    def python(self, name: str) -> random.Random:
        """A stdlib generator for ``name``: fast scalar draws in hot loops."""
        return random.Random(derive_seed(self.seed, name))

    def randbytes(self, name: str) -> Callable[[int], bytes]:
        """A deterministic byte source for key material and nonces (simulation keys only)."""
        return random.Random(derive_seed(self.seed, "bytes", name)).randbytes
