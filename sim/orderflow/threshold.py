"""``threshold``: a Shutter-style encrypted mempool, decrypted by a keyper committee in batches.

For every batch epoch the ``privacy.keypers`` keypers run a distributed key generation (Feldman
VSS over P-256, :mod:`market.threshold`): nobody ever holds the epoch secret. A trader encrypts
its order (ECIES, padded to ``privacy.pad_to_bytes``) to the epoch that closes at least a few
blocks ahead and diffuses the sealed transaction; sequencers put sealed transactions on chain,
where their sender and size are public. When the epoch closes, the keypers send their shares to
an aggregating keyper, which verifies ``threshold`` of them against the DKG's commitments,
combines them by Lagrange interpolation and diffuses the epoch key. The next proposer that holds
the key decrypts the epoch's sealed transactions and clears them as one batch at a uniform price.

A sealed transaction that reaches the chain after its epoch closed is rejected as ``late``; an
epoch whose key cannot be assembled in time (too few shares arrived) is recorded as failed and
its orders rejected as ``undecryptable``: nothing is ever executed in plaintext silently.

Host choices, stated once: a DKG runs only for epochs that carry at least one order (an
empty epoch has nothing to decrypt; a deployment would run it anyway), its messages among the
keypers (a sealed share and the dealer's commitments per ordered pair) are counted (kind ``dkg``)
but not routed, its cryptographic operations are metered as each keyper performs them deployed
while the simulator verifies all shares with one batched check (:mod:`market.threshold`), and
keys come from the run's seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from Crypto.PublicKey.ECC import EccPoint

from market.batch import BatchResult
from market.crypto import (
    POINT_BYTES,
    CryptoMeter,
    base_mul,
    ecies_decrypt,
    ecies_encrypt,
    metering,
    random_scalar,
)
from market.errors import CryptoError
from market.proofs import prove_sender, verify_sender
from market.threshold import (
    SEALED_SHARE_BYTES,
    EpochKey,
    combine_secret,
    deal,
    exchange_ops,
    run_dkg,
)
from market.types import Order, decode_compact, encode_compact
from sim.chain.blocks import BatchTx, Block, SealedTx, Tx, TxResult
from sim.chain.mempool import Mempools
from sim.host.component import Genesis, OrderFlow
from sim.host.host import Host
from sim.net.network import Message, unexpected
from sim.results.records import COPYCAT_KIND, OrderRecord
from sim.scenario import Privacy

SHARE_BYTES = 4 + 4 + 32
"""A revealed share on the wire: epoch, keyper index, the 32-byte scalar."""

KEY_BYTES = 4 + 32
"""A released epoch key on the wire: epoch and secret."""


@dataclass(frozen=True, slots=True)
class KeyShare:
    """Keyper ``index``'s share of the epoch secret, sent to the aggregating keyper."""

    kind: ClassVar[str] = "share"
    size: ClassVar[int] = SHARE_BYTES
    epoch: int
    index: int
    share: int


@dataclass(frozen=True, slots=True)
class EpochSecret:
    """The assembled secret of an epoch, diffused so that proposers can decrypt its batch."""

    kind: ClassVar[str] = "key"
    size: ClassVar[int] = KEY_BYTES
    epoch: int
    secret: int


DKG_SHARE_BYTES = 4 + 4 + 4 + SEALED_SHARE_BYTES
"""A dealer's sealed share for one recipient: epoch, dealer, recipient, the ECIES blob."""


def dkg_commitment_bytes(t: int) -> int:
    """A dealer's Feldman commitments as sent to each other keyper: epoch, dealer, t points."""
    return 4 + 4 + t * POINT_BYTES


RELEASE_TIMEOUT_S = 60.0
"""An epoch whose key is not assembled this long after it closed is recorded as failed."""


def epoch_aad(epoch: int) -> bytes:
    """What a sealed order's AEAD binds: its epoch (a ciphertext cannot move to another)."""
    return b"veilcast/epoch/" + epoch.to_bytes(8, "big")


def decrypt_epoch(
    secret: int, epoch: int, sealed: Sequence[tuple[int, bytes]], *, meter: CryptoMeter
) -> tuple[tuple[Order, ...], list[int]]:
    """The orders the epoch's ``(sender, ciphertext)`` hide under its ``secret``, in chain order.

    Each order executes for the sender that put it on chain (the account that pays), whatever
    its plaintext names: so a copy of someone's ciphertext sent under another address executes
    for the copier. Returns the orders with the indices of the ciphertexts that do not decrypt
    to an order (a tampered or malformed one), which are left out: the proposer and every
    replica derive a batch by this one function.
    """
    orders, invalid = [], []
    for index, (sender, blob) in enumerate(sealed):
        try:
            plain = decode_compact(ecies_decrypt(secret, blob, aad=epoch_aad(epoch), meter=meter))
        except (CryptoError, ValueError):
            invalid.append(index)
            continue
        orders.append(plain if plain.trader == sender else replace(plain, trader=sender))
    return tuple(orders), invalid


class BatchVerifier:
    """How every replica checks the sealed orders and the decrypted batches before applying them.

    A sealed order joins its epoch only with a valid sender proof, when ``privacy.sender_proofs``
    requires one (:func:`market.proofs.verify_sender`). A batch's key must be the epoch's secret
    (``key·G`` is the public key of the epoch's DKG), and the epoch's sealed orders on chain must
    decrypt under it to exactly the batch's orders, in chain order (:func:`decrypt_epoch`). So a
    proposer cannot slip in, drop or alter an order, nor let a copied ciphertext in. Every
    replica runs the same pure computation on the same bytes: it is computed once and its
    operations are metered once for each caller (the canonical chain and every replica), its
    seconds once.

    Args:
        public_key: the epoch's public key (None: no DKG ran for it).
        meter: the run's protocol meter.
        sender_proofs: whether every sealed order must carry a valid sender proof.
    """

    def __init__(
        self,
        public_key: Callable[[int], EccPoint | None],
        meter: CryptoMeter,
        *,
        sender_proofs: bool = False,
    ) -> None:
        self.public_key = public_key
        self.meter = meter
        self.sender_proofs = sender_proofs
        self.memo: dict[Hashable, tuple[bool, CryptoMeter]] = {}

    def sealed_ok(self, tx: SealedTx) -> bool:
        """Whether ``tx`` may join its epoch: its proof binds it to its sender and epoch."""
        if not self.sender_proofs:
            return True
        return self._once(
            ("sealed", tx),
            lambda tally: verify_sender(
                tx.ciphertext, tx.proof, sender=tx.sender, epoch=tx.epoch, meter=tally
            ),
        )

    def __call__(self, tx: BatchTx, sealed: Sequence[tuple[int, bytes]]) -> bool:
        """Whether ``tx`` is the batch the epoch's ``sealed`` orders and its key give."""
        return self._once(
            (tx.batch_id, tx.key, tx.orders, tuple(sealed)),
            lambda tally: self._check(tx, sealed, tally),
        )

    def _once(self, key: Hashable, check: Callable[[CryptoMeter], bool]) -> bool:
        """``check``'s answer, computed the first time; every caller's run of it is metered."""
        done = self.memo.get(key)
        if done is None:
            tally = CryptoMeter()
            done = self.memo[key] = (check(tally), tally)
            self.meter.merge(tally)  # its operations, and the seconds it took, once
        else:
            self.meter.merge(CryptoMeter(ops=dict(done[1].ops)))  # another node's run of it
        return done[0]

    def _check(self, tx: BatchTx, sealed: Sequence[tuple[int, bytes]], tally: CryptoMeter) -> bool:
        public = self.public_key(tx.batch_id)
        if public is None or len(tx.key) != 32:
            return False
        secret = int.from_bytes(tx.key, "big")
        with metering(tally) as inner:
            if base_mul(secret, meter=inner) != public:
                return False
            orders, _ = decrypt_epoch(secret, tx.batch_id, sealed, meter=inner)
        return orders == tx.orders


class Threshold(OrderFlow):
    """Encrypted orders, sealed on chain, decrypted per epoch by a t-of-n keyper committee.

    Args (beyond the order flow's):
        keypers: the committee's nodes; the first aggregates the shares.
        colluding_keypers: how many keypers (the first ones) pool their shares with the
            adversary, who can decrypt an epoch early once they reach the threshold.
        reader: the adversary's node, where it reads what it decrypts.
    """

    mode = "threshold"

    def __init__(
        self,
        sim: Host,
        *,
        privacy: Privacy,
        watchers: frozenset[int],
        keypers: tuple[int, ...],
        colluding_keypers: int,
        reader: int,
    ) -> None:
        super().__init__(sim, privacy=privacy, watchers=watchers)
        self.keypers = keypers
        self.reader = reader
        self.n, self.t = len(self.keypers), privacy.threshold
        self.interval = privacy.batch_interval_s
        self.margin = 3 * sim.block_interval_s
        self.randbytes = sim.streams.randbytes("threshold")
        self.keys: dict[int, EpochKey] = {}
        self.adversary_secret: dict[int, int] = {}
        self.adversary_meter = CryptoMeter()
        self.colluders = tuple(range(1, colluding_keypers + 1))
        self.sealed: Mempools[SealedTx] = Mempools(sim.validators)
        self.onchain: dict[int, list[SealedTx]] = {}
        self.owner: dict[SealedTx, OrderRecord] = {}
        self.key_at: dict[int, dict[int, int]] = {node: {} for node in sim.validators}
        self.batched: set[int] = set()
        self.failed: set[int] = set()
        self.shares: dict[int, dict[int, int]] = {}
        self.released: dict[int, int] = {}
        self.verifier = BatchVerifier(
            self._public_key, sim.meter, sender_proofs=privacy.sender_proofs
        )

    def _public_key(self, epoch: int) -> EccPoint | None:
        key = self.keys.get(epoch)
        return key.public_key if key is not None else None

    def close_time(self, epoch: int) -> float:
        """When epoch ``epoch``'s batch closes."""
        return (epoch + 1) * self.interval

    def epoch_for(self, t: float) -> int:
        """The epoch an order made at ``t`` is encrypted to: one closing a few blocks later."""
        return math.floor((t + self.margin) / self.interval)

    def epoch_key(self, epoch: int) -> EpochKey:
        """The epoch's key, from a DKG run once (on first use) among the keypers."""
        key = self.keys.get(epoch)
        if key is None:
            deals = [
                deal(i, n=self.n, t=self.t, randbytes=self.randbytes, meter=self.sim.meter)
                for i in range(1, self.n + 1)
            ]
            # the simulator checks every recipient's shares at once; the meter counts what the
            # keypers perform as deployed (market.threshold.exchange_ops), its seconds are ours
            shortcut = CryptoMeter()
            key = self.keys[epoch] = run_dkg(deals, n=self.n, t=self.t, meter=shortcut)
            deployed = CryptoMeter(cpu_s=shortcut.cpu_s)
            for kind, count in exchange_ops(self.n, self.t).items():
                deployed.count(kind, count)
            self.sim.meter.merge(deployed)
            pairs = self.n * (self.n - 1)
            self.sim.net.stats.add("dkg", sent=pairs, delivered=pairs, lost=0, size=DKG_SHARE_BYTES)
            self.sim.net.stats.add(
                "dkg", sent=pairs, delivered=pairs, lost=0, size=dkg_commitment_bytes(self.t)
            )
            if len(self.colluders) >= self.t:
                shares = {j: key.secret_shares[j] for j in self.colluders}
                self.adversary_secret[epoch] = combine_secret(
                    key, shares, meter=self.adversary_meter
                )
            self.sim.after(self.close_time(epoch) - self.sim.now, lambda: self._release(epoch))
        return key

    def submit(self, record: OrderRecord) -> None:
        """Encrypt to the epoch key and diffuse the sealed transaction."""
        epoch = self.epoch_for(self.sim.now)
        key = self.epoch_key(epoch)
        sender = self.public_sender(record)
        # the ephemeral secret is drawn here only when it must be proven, so runs without
        # proofs draw exactly what they drew before proofs existed
        ephemeral = random_scalar(self.randbytes) if self.privacy.sender_proofs else None
        ciphertext = ecies_encrypt(
            key.public_key,
            encode_compact(self.public_order(record)),
            randbytes=self.randbytes,
            pad_to=self.privacy.pad_to_bytes,
            aad=epoch_aad(epoch),
            ephemeral=ephemeral,
            meter=self.sim.meter,
        )
        proof = b""
        if ephemeral is not None:
            proof = prove_sender(
                ephemeral,
                ciphertext,
                sender=sender,
                epoch=epoch,
                randbytes=self.randbytes,
                meter=self.sim.meter,
            )
        tx = SealedTx(sender, epoch, ciphertext, proof)
        self.owner[tx] = record
        record.wire_bytes, record.batch_id = len(ciphertext) + len(proof), epoch

        record.flood = self.sim.spread(record.node, tx, to=self.receive, listeners=self.listeners())

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """Sealed orders reach sequencers and watchers; shares the aggregator; keys proposers."""
        match msg:
            case SealedTx():
                if node in self.watchers:
                    self._adversary_sees(self.owner[msg], msg)
                self.sealed.add(node, msg, msg, self.sim.now)
            case KeyShare(epoch=epoch, index=index, share=share):
                self._share_in(epoch, index, share)
            case EpochSecret(epoch=epoch, secret=secret):
                pool = self.key_at.get(node)
                if pool is not None and epoch not in self.batched:
                    pool[epoch] = secret
            case _:
                unexpected(msg)

    def _adversary_sees(self, record: OrderRecord, tx: SealedTx) -> None:
        """The adversary holds a sealed order; it reads it only if it holds the epoch's secret.

        Colluding keypers at or above the threshold assembled it when the epoch's DKG ran, so
        the adversary decrypts the ciphertext it holds and acts on the order it decoded.
        """
        secret = self.adversary_secret.get(tx.epoch)
        read = None
        if secret is not None:
            plain = ecies_decrypt(
                secret, tx.ciphertext, aad=epoch_aad(tx.epoch), meter=self.adversary_meter
            )
            read = decode_compact(plain)
            if self.sim.now < self.close_time(tx.epoch):
                self.seen_plaintext(record, self.reader)
        self.overheard(record, tx, read=read)

    def copy(self, tx: SealedTx, *, account: int, node: int) -> OrderRecord:
        """``account`` at ``node`` resends the sealed order ``tx`` under its own address.

        The copy keeps the ciphertext and the proof (its sender cannot make a proof of its own
        without the ciphertext's ephemeral secret). Nobody can read what it copies: the batch
        will decrypt the original's plaintext and execute it for the copy's sender. Its record
        (the adversary's, not a user's) is built from the original's, for scoring only.
        """
        original = self.owner[tx]
        records = self.sim.records
        order = replace(original.order, trader=account, nonce=len(records.orders))
        record = records.submitted(order, kind=COPYCAT_KIND, node=node, t=self.sim.now)
        sender = self.public_sender(record)
        record.public = replace(original.public, trader=sender)  # what the batch will execute
        self.sim.by_key[record.public.key] = record
        copy = SealedTx(sender, tx.epoch, tx.ciphertext, tx.proof)
        self.owner[copy] = record
        record.wire_bytes, record.batch_id = len(tx.ciphertext) + len(tx.proof), tx.epoch
        record.flood = self.sim.spread(node, copy, to=self.receive, listeners=self.listeners())
        return record

    def propose(self, proposer: int) -> list[Tx]:
        """Sealed transactions of open epochs, then every batch whose key the proposer holds."""
        now = self.sim.now
        taken = self.sealed.take(proposer, order=lambda _tx, t: t)
        txs: list[Tx] = []
        for tx, arrival in taken:
            record = self.owner[tx]
            if now < self.close_time(tx.epoch) and tx.epoch not in self.failed:
                record.sequenced(arrival)
                txs.append(tx)
            elif not record.final:
                record.reject("late")
        for epoch, secret in sorted(self.key_at[proposer].items()):
            for pool in self.key_at.values():
                pool.pop(epoch, None)
            self.batched.add(epoch)
            key = secret.to_bytes(32, "big")
            txs.append(BatchTx(epoch, self._decrypt(epoch, secret), key))
        return txs

    def _decrypt(self, epoch: int, secret: int) -> tuple[Order, ...]:
        """Decrypt every sealed transaction of ``epoch`` on chain (a tampered one is rejected)."""
        onchain = self.onchain.get(epoch, [])
        sealed = [(tx.sender, tx.ciphertext) for tx in onchain]
        orders, invalid = decrypt_epoch(secret, epoch, sealed, meter=self.sim.meter)
        for index in invalid:
            self.owner[onchain[index]].reject("invalid")
        return orders

    def genesis(self) -> Genesis:
        """Every replica checks each batch against the epoch's sealed orders (see there)."""
        return Genesis(batch_check=self.verifier)

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Sealed transactions join their epoch; batches record fills and rejections."""
        for tx, result in zip(block.txs, results, strict=True):
            if isinstance(tx, SealedTx) and result is False:
                self.owner[tx].reject("proof")  # refused on chain: it never joins a batch
            elif isinstance(tx, SealedTx):
                self.onchain.setdefault(tx.epoch, []).append(tx)
                self._adversary_sees(self.owner[tx], tx)
            elif isinstance(tx, BatchTx) and isinstance(result, BatchResult):
                for fill in result.fills:
                    self.sim.by_key[fill.order.key].finish(fill, height=block.height, t=block.t)
                for rejection in result.rejections:
                    self.sim.by_key[rejection.order.key].finish(
                        rejection, height=block.height, t=block.t
                    )

    # -- key release ---------------------------------------------------------------------

    def _release(self, epoch: int) -> None:
        """The epoch closed: keypers send their shares to the aggregator (the first keyper)."""
        if not self.onchain.get(epoch):
            return
        key = self.keys[epoch]
        aggregator = self.keypers[0]
        self.shares[epoch] = {}
        for index, node in enumerate(self.keypers, start=1):
            share = key.secret_shares[index]
            path = self.sim.net.route(node, aggregator)
            self.sim.net.relay(path, KeyShare(epoch, index, share), to=self.receive)
        self.sim.after(RELEASE_TIMEOUT_S, lambda: self._give_up(epoch))

    def _share_in(self, epoch: int, index: int, share: int) -> None:
        """A share reached the aggregator; with enough valid ones it releases the key."""
        shares = self.shares[epoch]
        shares[index] = share
        if epoch in self.released or len(shares) < self.t:
            return
        try:
            secret = combine_secret(self.keys[epoch], shares, meter=self.sim.meter)
        except CryptoError:
            return  # too few valid shares so far: wait for more
        self.released[epoch] = secret
        for tx in self.onchain.get(epoch, []):
            self.seen_plaintext(self.owner[tx], self.keypers[0])
        self.sim.broadcast(
            self.keypers[0],
            EpochSecret(epoch, secret),
            to=self.receive,
            listeners=self.sim.sequencers,
        )

    def _give_up(self, epoch: int) -> None:
        """No key in time: the epoch's orders are rejected, never executed in plaintext."""
        if epoch in self.released:
            return
        self.failed.add(epoch)
        for tx in self.onchain.get(epoch, []):
            record = self.owner[tx]
            if not record.final:
                record.reject("undecryptable")

    def metrics(self) -> dict[str, float]:
        """Batch failures of this mode."""
        epochs = [e for e in self.keys if self.onchain.get(e)]
        return {
            "privacy.failed_batch_fraction": len(self.failed) / len(epochs) if epochs else math.nan
        }
