"""``threshold``: a Shutter-style encrypted mempool, decrypted by a keyper committee in batches.

The ``privacy.keypers`` keypers run one distributed key generation (Feldman VSS over P-256,
:mod:`market.threshold`) when the first order needs the key: nobody ever holds its secret, and
each keyper's key share serves every epoch, since it is never revealed. A trader encrypts its
order (ECIES, padded to ``privacy.pad_to_bytes``, bound to the epoch that closes at least a few
blocks ahead) and diffuses the sealed transaction; sequencers put sealed transactions on chain,
where their sender and size are public. When the epoch closes, each keyper sends the aggregating
keyper a decryption share of each of the epoch's sealed orders with a Chaum–Pedersen proof
(TDH2); the aggregator checks every share, names the keypers of invalid ones, and once each
sealed order has ``threshold`` valid shares diffuses them. The next proposer that holds them
opens the epoch's sealed orders and clears them as one batch at a uniform price; the batch
carries the shares, and every replica checks each one before it executes the batch.

A sealed transaction that reaches the chain after its epoch closed is rejected as ``late``; an
epoch that cannot get enough valid shares in time (lost, or forged by cheating keypers) is
recorded as failed and its orders rejected as ``undecryptable``: nothing is ever executed in
plaintext silently.

Host choices, stated once: the DKG's messages among the keypers (a sealed share and the
dealer's commitments per ordered pair) are counted (kind ``dkg``) but not routed, its
cryptographic operations are metered as each keyper performs them deployed while the simulator
verifies all DKG shares with one batched check (:mod:`market.threshold`), and keys come from the
run's seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, TypeVar, cast

from market.batch import BatchResult
from market.crypto import (
    POINT_BYTES,
    CryptoMeter,
    ecies_decrypt,
    ecies_encrypt,
    ecies_open,
    point_from_bytes,
    random_scalar,
)
from market.errors import CryptoError
from market.proofs import prove_sender, verify_sender
from market.threshold import (
    DECRYPTION_SHARE_BYTES,
    SEALED_SHARE_BYTES,
    DecryptionShare,
    EpochKey,
    combine_secret,
    combine_shares,
    corrupt,
    deal,
    decryption_share,
    exchange_ops,
    forged_share,
    run_dkg,
    verify_decryption_share,
)
from market.types import Order, decode_compact, encode_compact
from sim.chain.blocks import BatchTx, Block, SealedTx, Tx, TxResult
from sim.chain.mempool import Mempools
from sim.host.component import Genesis, OrderFlow
from sim.host.host import Host
from sim.net.network import Message, unexpected
from sim.results.records import COPYCAT_KIND, OrderRecord
from sim.scenario import Privacy


@dataclass(frozen=True, slots=True)
class ShareSet:
    """Keyper ``keyper``'s decryption shares of its epoch's sealed orders, in chain order.

    ``None`` stands for a sealed order it cannot share (its ephemeral point is off the curve).
    Sent to the aggregating keyper when the epoch closes; the key share itself never leaves.
    """

    kind: ClassVar[str] = "share"
    epoch: int
    keyper: int
    shares: tuple[DecryptionShare | None, ...]

    @property
    def size(self) -> int:
        """Bytes on the wire: epoch, keyper, and one share per sealed order."""
        return 4 + 4 + DECRYPTION_SHARE_BYTES * len(self.shares)


@dataclass(frozen=True, slots=True)
class Opening:
    """``threshold`` valid shares of each of an epoch's sealed orders, diffused to proposers.

    An empty tuple stands for a sealed order nobody could share (it will not decrypt).
    """

    kind: ClassVar[str] = "opening"
    epoch: int
    shares: tuple[tuple[DecryptionShare, ...], ...]

    @property
    def size(self) -> int:
        """Bytes on the wire: epoch, a count per sealed order, and the shares."""
        return 4 + sum(2 + DECRYPTION_SHARE_BYTES * len(s) for s in self.shares)


DKG_SHARE_BYTES = 4 + 4 + 4 + SEALED_SHARE_BYTES
"""A dealer's sealed share for one recipient: epoch, dealer, recipient, the ECIES blob."""


def dkg_commitment_bytes(t: int) -> int:
    """A dealer's Feldman commitments as sent to each other keyper: epoch, dealer, t points."""
    return 4 + 4 + t * POINT_BYTES


T = TypeVar("T")

RELEASE_TIMEOUT_S = 60.0
"""An epoch whose key is not assembled this long after it closed is recorded as failed."""


def epoch_aad(epoch: int) -> bytes:
    """What a sealed order's AEAD binds: its epoch (a ciphertext cannot move to another)."""
    return b"veilcast/epoch/" + epoch.to_bytes(8, "big")


def open_epoch(
    key: EpochKey,
    epoch: int,
    sealed: Sequence[tuple[int, bytes]],
    shares: Sequence[Sequence[DecryptionShare]],
    *,
    meter: CryptoMeter,
) -> tuple[tuple[Order, ...], list[int]]:
    """The orders the epoch's ``(sender, ciphertext)`` hide, opened by their decryption shares.

    Each ciphertext's shares combine into the ECIES shared point (nobody holds the secret key);
    the shares are taken as given, checked or not (:class:`BatchVerifier` checks them). Each
    order executes for the sender that put it on chain (the account that pays), whatever its
    plaintext names: so a copy of someone's ciphertext sent under another address executes for
    the copier. Returns the orders in chain order with the indices of the ciphertexts that do
    not open to an order (no shares, a tampered or malformed one), which are left out: the
    proposer and every replica derive a batch by this one function.
    """
    orders, invalid = [], []
    for index, ((sender, blob), opening) in enumerate(zip(sealed, shares, strict=True)):
        try:
            if len(opening) < key.t:
                raise CryptoError("not enough shares")
            shared = combine_shares(opening, meter=meter)
            plain = decode_compact(ecies_open(shared, blob, aad=epoch_aad(epoch), meter=meter))
        except (CryptoError, ValueError):
            invalid.append(index)
            continue
        orders.append(plain if plain.trader == sender else replace(plain, trader=sender))
    return tuple(orders), invalid


def shareable(ciphertext: bytes) -> bool:
    """Whether keypers can make decryption shares of ``ciphertext`` (its ``E`` is on the curve)."""
    try:
        point_from_bytes(ciphertext[:POINT_BYTES])
    except CryptoError:
        return False
    return True


class BatchVerifier:
    """How every replica checks the sealed orders and the decrypted batches before applying them.

    A sealed order joins its epoch only with a valid sender proof, when ``privacy.sender_proofs``
    requires one (:func:`market.proofs.verify_sender`). A batch must carry, for each of the
    epoch's sealed orders on chain, ``threshold`` decryption shares of distinct keypers, each
    with a valid Chaum–Pedersen proof against its keyper's public share (none only for a
    ciphertext nobody can share), and the shares must open the sealed orders to exactly the
    batch's orders, in chain order (:func:`open_epoch`). So a proposer cannot slip in, drop or
    alter an order, nor let a copied ciphertext in, nor pass off a forged share. Every replica
    runs the same pure computation on the same bytes: it is computed once and its operations
    are metered once for each caller (the canonical chain and every replica), its seconds once.

    Args:
        key: the committee's key (None: no DKG has run).
        meter: the run's protocol meter.
        sender_proofs: whether every sealed order must carry a valid sender proof.
    """

    def __init__(
        self,
        key: Callable[[], EpochKey | None],
        meter: CryptoMeter,
        *,
        sender_proofs: bool = False,
    ) -> None:
        self.key = key
        self.meter = meter
        self.sender_proofs = sender_proofs
        self.memo: dict[Hashable, tuple[object, CryptoMeter]] = {}

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
        """Whether ``tx`` is the batch the epoch's ``sealed`` orders and its shares give."""
        return self._once(
            ("batch", tx.batch_id, tx.orders, tx.shares, tuple(sealed)),
            lambda tally: self._check(tx, sealed, tally),
        )

    def open(
        self,
        epoch: int,
        sealed: Sequence[tuple[int, bytes]],
        shares: tuple[tuple[DecryptionShare, ...], ...],
    ) -> tuple[tuple[Order, ...], list[int]]:
        """:func:`open_epoch` as a proposer runs it (computed once, metered per caller)."""
        key = self.key()
        assert key is not None, "no batch is opened before the committee's key exists"
        return self._once(
            ("open", epoch, tuple(sealed), shares),
            lambda tally: open_epoch(key, epoch, sealed, shares, meter=tally),
        )

    def _once(self, key: Hashable, compute: Callable[[CryptoMeter], T]) -> T:
        """``compute``'s answer, computed the first time; every caller's run of it is metered."""
        done = self.memo.get(key)
        if done is None:
            tally = CryptoMeter()
            done = self.memo[key] = (compute(tally), tally)
            self.meter.merge(tally)  # its operations, and the seconds it took, once
        else:
            self.meter.merge(CryptoMeter(ops=dict(done[1].ops)))  # another node's run of it
        return cast(T, done[0])

    def _check(self, tx: BatchTx, sealed: Sequence[tuple[int, bytes]], tally: CryptoMeter) -> bool:
        key = self.key()
        if key is None or len(tx.shares) != len(sealed):
            return False
        for (_, blob), shares in zip(sealed, tx.shares, strict=True):
            if not shares and shareable(blob):
                return False  # withholding an order's shares would drop it
            if shares and len({s.keyper for s in shares}) != len(shares):
                return False
            if not all(verify_decryption_share(key, blob, s, meter=tally) for s in shares):
                return False
        orders, _ = open_epoch(key, tx.batch_id, sealed, tx.shares, meter=tally)
        return orders == tx.orders


class Threshold(OrderFlow):
    """Encrypted orders, sealed on chain, decrypted per epoch by a t-of-n keyper committee.

    One DKG gives the committee its key for the whole run: keypers never reveal their key
    shares, only decryption shares of the sealed orders of each closed epoch, so a key share
    serves every epoch.

    Args (beyond the order flow's):
        keypers: the committee's nodes; the first aggregates the shares.
        colluding_keypers: how many keypers (the first ones) pool their key shares with the
            adversary, who can decrypt any sealed order at once when they reach the threshold.
        cheating_keypers: how many keypers (the last ones) cheat: each deals a bad DKG share to
            one keyper and sends forged decryption shares.
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
        cheating_keypers: int = 0,
    ) -> None:
        super().__init__(sim, privacy=privacy, watchers=watchers)
        self.keypers = keypers
        self.reader = reader
        self.n, self.t = len(self.keypers), privacy.threshold
        self.interval = privacy.batch_interval_s
        self.margin = 3 * sim.block_interval_s
        self.randbytes = sim.streams.randbytes("threshold")
        self.share_randbytes = sim.streams.randbytes("decryption-shares")
        self.key: EpochKey | None = None
        self.adversary_secret: int | None = None
        self.adversary_meter = CryptoMeter()
        self.colluders = tuple(range(1, colluding_keypers + 1))
        self.cheaters = frozenset(range(self.n - cheating_keypers + 1, self.n + 1))
        self.cheating_detected = 0
        """Invalid shares caught and attributed: bad DKG deals, forged decryption shares."""
        self.sealed: Mempools[SealedTx] = Mempools(sim.validators)
        self.onchain: dict[int, list[SealedTx]] = {}
        self.owner: dict[SealedTx, OrderRecord] = {}
        self.opening_at: dict[int, dict[int, Opening]] = {node: {} for node in sim.validators}
        self.scheduled: set[int] = set()
        self.batched: set[int] = set()
        self.failed: set[int] = set()
        self.shares: dict[int, dict[int, ShareSet]] = {}
        """Per epoch, the share sets that reached the aggregator, by keyper."""
        self.valid: dict[int, list[list[DecryptionShare]]] = {}
        """Per epoch and sealed order, the shares the aggregator found valid so far."""
        self.needed: dict[int, list[int]] = {}
        """Per epoch and sealed order, the valid shares it needs: ``threshold``, or 0 for one
        nobody can share (its ephemeral point is off the curve), decided once at the close."""
        self.released: dict[int, Opening] = {}
        self.verifier = BatchVerifier(
            lambda: self.key, sim.meter, sender_proofs=privacy.sender_proofs
        )

    def close_time(self, epoch: int) -> float:
        """When epoch ``epoch``'s batch closes."""
        return (epoch + 1) * self.interval

    def epoch_for(self, t: float) -> int:
        """The epoch an order made at ``t`` is encrypted to: one closing a few blocks later."""
        return math.floor((t + self.margin) / self.interval)

    def committee_key(self) -> EpochKey:
        """The committee's key, from a DKG run once (on first use) among the keypers.

        Cheating keypers deal a bad share to the next keyper; its complaint excludes them as
        dealers (they keep their own key shares), and the key forms from the other deals.
        """
        if self.key is None:
            deals = [
                deal(i, n=self.n, t=self.t, randbytes=self.randbytes, meter=self.sim.meter)
                for i in range(1, self.n + 1)
            ]
            for i in self.cheaters:
                deals[i - 1] = corrupt(deals[i - 1], i % self.n + 1)
            # the simulator checks every recipient's shares at once; the meter counts what the
            # keypers perform as deployed (market.threshold.exchange_ops), its seconds are ours
            shortcut = CryptoMeter()
            key = self.key = run_dkg(deals, n=self.n, t=self.t, meter=shortcut)
            self.cheating_detected += len(key.complaints)
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
                self.adversary_secret = combine_secret(key, shares, meter=self.adversary_meter)
        return self.key

    def epoch_key(self, epoch: int) -> EpochKey:
        """The key orders of ``epoch`` are sealed to; the epoch's release is scheduled once."""
        key = self.committee_key()
        if epoch not in self.scheduled:
            self.scheduled.add(epoch)
            self.sim.after(self.close_time(epoch) - self.sim.now, lambda: self._release(epoch))
        return key

    def submit(self, record: OrderRecord) -> None:
        """Encrypt to the committee's key, bound to the epoch; diffuse the sealed transaction."""
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
            case ShareSet():
                self._shares_in(msg)
            case Opening(epoch=epoch):
                pool = self.opening_at.get(node)
                if pool is not None and epoch not in self.batched:
                    pool[epoch] = msg
            case _:
                unexpected(msg)

    def _adversary_sees(self, record: OrderRecord, tx: SealedTx) -> None:
        """The adversary holds a sealed order; it reads it only if it holds the committee's secret.

        Colluding keypers at or above the threshold assembled it when the DKG ran, so the
        adversary decrypts the ciphertext it holds and acts on the order it decoded.
        """
        secret = self.adversary_secret
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
        for epoch, opening in sorted(self.opening_at[proposer].items()):
            for pool in self.opening_at.values():
                pool.pop(epoch, None)
            self.batched.add(epoch)
            txs.append(BatchTx(epoch, self._open(epoch, opening), opening.shares))
        return txs

    def _open(self, epoch: int, opening: Opening) -> tuple[Order, ...]:
        """Open every sealed order of ``epoch`` on chain (one that does not open is rejected)."""
        onchain = self.onchain.get(epoch, [])
        sealed = [(tx.sender, tx.ciphertext) for tx in onchain]
        orders, invalid = self.verifier.open(epoch, sealed, opening.shares)
        for index in invalid:
            record = self.owner[onchain[index]]
            if not record.final:
                record.reject("invalid")
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
        """The epoch closed: each keyper sends its decryption shares to the aggregator."""
        onchain = self.onchain.get(epoch)
        if not onchain:
            return
        key = self.committee_key()
        aggregator = self.keypers[0]
        self.shares[epoch] = {}
        self.valid[epoch] = [[] for _ in onchain]
        self.needed[epoch] = [self.t if shareable(tx.ciphertext) else 0 for tx in onchain]
        for index, node in enumerate(self.keypers, start=1):
            shares = tuple(self._decryption_share(key, index, tx) for tx in onchain)
            path = self.sim.net.route(node, aggregator)
            self.sim.net.relay(path, ShareSet(epoch, index, shares), to=self.receive)
        self.sim.after(RELEASE_TIMEOUT_S, lambda: self._give_up(epoch))

    def _decryption_share(self, key: EpochKey, index: int, tx: SealedTx) -> DecryptionShare | None:
        """Keyper ``index``'s share of ``tx`` (None if it can make none; forged if it cheats)."""
        try:
            share = decryption_share(
                key, index, tx.ciphertext, randbytes=self.share_randbytes, meter=self.sim.meter
            )
        except CryptoError:
            return None
        return forged_share(share) if index in self.cheaters else share

    def _shares_in(self, arrived: ShareSet) -> None:
        """A keyper's shares reached the aggregator, which checks every one of them.

        A share that fails its proof is attributed to its keyper, also after the release (so
        every cheater is named). Once each sealed order of the epoch has ``threshold`` valid
        shares (or none can be made), the aggregator diffuses them.
        """
        epoch = arrived.epoch
        if epoch in self.failed or arrived.keyper in self.shares[epoch]:
            return
        key, onchain = self.committee_key(), self.onchain[epoch]
        self.shares[epoch][arrived.keyper] = arrived
        for valid, tx, share in zip(self.valid[epoch], onchain, arrived.shares, strict=True):
            if share is None:
                continue
            if verify_decryption_share(key, tx.ciphertext, share, meter=self.sim.meter):
                valid.append(share)
            else:
                self.cheating_detected += 1
        ready = all(
            len(valid) >= need
            for valid, need in zip(self.valid[epoch], self.needed[epoch], strict=True)
        )
        if epoch in self.released or not ready:
            return
        opening = Opening(epoch, tuple(tuple(valid[: self.t]) for valid in self.valid[epoch]))
        self.released[epoch] = opening
        for tx in onchain:
            self.seen_plaintext(self.owner[tx], self.keypers[0])
        self.sim.broadcast(self.keypers[0], opening, to=self.receive, listeners=self.sim.sequencers)

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
        """Batch failures, and the cheating keypers' shares caught."""
        epochs = [e for e in self.scheduled if self.onchain.get(e)]
        return {
            "privacy.failed_batch_fraction": len(self.failed) / len(epochs) if epochs else math.nan,
            "privacy.cheating_shares_detected": float(self.cheating_detected),
        }
