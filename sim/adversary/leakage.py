"""The adversary's estimators: what it learns about orders before they execute.

Direction inference is evaluated online over every order whose content became public on chain,
in time order: when it first sees an order (at the latest when it executes) the adversary
predicts its outcome from what it has seen of it by then, and learns the truth once the order
is public. What it has seen (SPEC section 4) is the order's content where it could read it;
otherwise six observations, each only as far as it was known at that moment (:class:`Observer`):
its envelope's sender, its size, the node the first spy heard it from (its own estimate of who
sent it), the tenth of the run it was seen in (timing), how many orders of its batch had been
seen by then (batch), and the outcome the latest public trade bought (the public history). A
commit-reveal order whose commitment was forfeited never became public: it is neither predicted
nor learnt. A naive Bayes classifier over those observations, trained only on orders already
public, cannot overfit what it predicts. The
advantage is the accuracy minus the share of the most common outcome (the best guess with no
observation at all).

Mutual information between informed traders' private signals and the adversary's predictions
uses the plug-in estimate with the Miller–Madow bias correction, so independent variables give
about 0 rather than a positive bias.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sim.adversary.spies import first_spy
from sim.host.component import Component
from sim.host.host import Host
from sim.results.records import OrderRecord
from sim.scenario import Privacy

NAN = math.nan


@dataclass(slots=True)
class NaiveBayes:
    """An online categorical naive Bayes classifier with add-one smoothing.

    Feature values never seen in training are skipped rather than scored, so a one-time value
    (a fresh address) carries no weight either way.
    """

    classes: int
    prior: Counter[int] = field(default_factory=Counter)
    counts: Counter[tuple[int, Hashable, int]] = field(default_factory=Counter)
    seen: dict[int, set[Hashable]] = field(default_factory=dict)

    def learn(self, features: Sequence[Hashable], label: int) -> None:
        """Add one labelled example."""
        self.prior[label] += 1
        for i, value in enumerate(features):
            if value is not None:
                self.counts[(i, value, label)] += 1
                self.seen.setdefault(i, set()).add(value)

    def predict(self, features: Sequence[Hashable]) -> int:
        """The most probable class (ties to the more common class, then the lower index)."""
        total = sum(self.prior.values())
        best, best_score = 0, -math.inf
        for label in range(self.classes):
            n = self.prior[label]
            score = math.log((n + 1) / (total + self.classes))
            for i, value in enumerate(features):
                values = self.seen.get(i, set())
                if value is not None and value in values:
                    score += math.log((self.counts[(i, value, label)] + 1) / (n + len(values)))
            tied = abs(score - best_score) <= 1e-12
            if score > best_score + 1e-12 or (tied and n > self.prior[best]):
                best, best_score = label, score
        return best


def entropy_mm(counts: Iterable[int]) -> float:
    """Miller–Madow corrected entropy in bits: plug-in plus (bins − 1) / 2N."""
    items = [c for c in counts if c > 0]
    total = sum(items)
    if total == 0:
        return NAN
    plugin = -sum(c / total * math.log(c / total) for c in items)
    return (plugin + (len(items) - 1) / (2 * total)) / math.log(2)


def mutual_information_bits(pairs: Sequence[tuple[Hashable, Hashable]]) -> float:
    """Miller–Madow corrected mutual information between the two halves of ``pairs``."""
    if not pairs:
        return NAN
    xs = Counter(x for x, _ in pairs)
    ys = Counter(y for _, y in pairs)
    joint = Counter(pairs)
    return entropy_mm(xs.values()) + entropy_mm(ys.values()) - entropy_mm(joint.values())


@dataclass(frozen=True, slots=True)
class Inference:
    """Direction inference over a run: per evaluated order, its truth and the prediction."""

    truths: tuple[int, ...]
    predictions: tuple[int, ...]
    records: tuple[OrderRecord, ...]

    def accuracy(self) -> float:
        """Share of orders whose outcome the adversary named."""
        if not self.truths:
            return NAN
        hits = sum(t == p for t, p in zip(self.truths, self.predictions, strict=True))
        return hits / len(self.truths)

    def advantage(self) -> float:
        """Accuracy minus the share of the most common outcome."""
        if not self.truths:
            return NAN
        base = Counter(self.truths).most_common(1)[0][1] / len(self.truths)
        return self.accuracy() - base


FEATURES = ("sender", "size", "origin", "timing", "batch", "history")
"""The observations the estimator uses, in the order :meth:`Observer.observe` returns them."""

TIME_SLICES = 10
"""Timing: which tenth of the run the adversary first saw an order in."""


@dataclass(frozen=True, slots=True)
class Observer:
    """What the adversary had observed of an order at a moment: each of :data:`FEATURES`.

    A feature it had not observed is None (never learnt, never scored).

    Attributes:
        spies: the spy nodes, ascending (for the first-spy origin).
        horizon_s: the run's end (timing is the tenth of ``[0, horizon_s)``).
        tape: times and outcomes of the trades executed on chain (anyone's), ascending.
        batches: per batch, ascending, when the adversary saw each of its orders.
        use: the features observed (the others are None): all of them in a run.
    """

    spies: np.ndarray
    horizon_s: float
    tape: tuple[tuple[float, ...], tuple[int, ...]] = ((), ())
    batches: dict[int, list[float]] = field(default_factory=dict)
    use: frozenset[str] = frozenset(FEATURES)

    @classmethod
    def of(
        cls,
        records: Sequence[OrderRecord],
        *,
        spies: frozenset[int],
        horizon_s: float,
        use: Iterable[str] = FEATURES,
    ) -> Observer:
        """The observer of a run's ``records``: its public tape and batches from them."""
        public = sorted((r.t_executed, r.order.outcome) for r in records if r.status == "executed")
        batches: defaultdict[int, list[float]] = defaultdict(list)
        for r in records:
            if r.batch_id >= 0 and not math.isnan(r.adv_seen_t):
                batches[r.batch_id].append(r.adv_seen_t)
        for times in batches.values():
            times.sort()
        return cls(
            spies=np.array(sorted(spies), dtype=np.int64),
            horizon_s=horizon_s,
            tape=(tuple(t for t, _ in public), tuple(o for _, o in public)),
            batches=dict(batches),
            use=frozenset(use),
        )

    def observe(self, record: OrderRecord, *, at: float) -> tuple[Hashable, ...]:
        """The features of ``record`` as the adversary knew them at ``at``, in FEATURES order."""
        values: dict[str, Hashable] = {
            "sender": record.adv_sender if record.adv_sender >= 0 else None,
            "size": record.adv_size if record.adv_size >= 0 else None,
            "origin": self._origin(record, at),
            "timing": self._timing(at),
            "batch": self._batch(record, at),
            "history": self._history(at),
        }
        return tuple(values[name] if name in self.use else None for name in FEATURES)

    def _origin(self, record: OrderRecord, at: float) -> int | None:
        if record.flood is None or not self.spies.size:
            return None
        _, origin = first_spy(record.flood, self.spies, until=at)
        return origin if origin >= 0 else None

    def _timing(self, at: float) -> int | None:
        if not self.horizon_s > 0 or math.isinf(at):
            return None
        return min(TIME_SLICES - 1, max(0, int(TIME_SLICES * at / self.horizon_s)))

    def _batch(self, record: OrderRecord, at: float) -> int | None:
        """How many of the batch's orders it had seen by ``at``, in powers of two (1, 2, 4...)."""
        seen = bisect.bisect_right(self.batches.get(record.batch_id, ()), at)
        return seen.bit_length() if record.batch_id >= 0 and seen else None

    def _history(self, at: float) -> int | None:
        """The outcome the latest public trade executed strictly before ``at`` bought."""
        times, outcomes = self.tape
        last = bisect.bisect_left(times, at) - 1
        return outcomes[last] if last >= 0 else None


def infer_directions(
    records: Sequence[OrderRecord],
    *,
    outcomes: int,
    spies: frozenset[int],
    until: float,
    use: Iterable[str] = FEATURES,
) -> Inference:
    """Predict each public order's outcome online, learning each truth once it is public.

    ``use`` names the observations the adversary draws on (all of :data:`FEATURES` in a run).
    """
    public = [r for r in records if r.block >= 0 and r.honest and r.reason != "forfeited"]
    observer = Observer.of(records, spies=spies, horizon_s=until, use=use)
    events: list[tuple[float, int, int]] = []
    predict_at: list[float] = []
    for i, r in enumerate(public):
        seen = r.adv_seen_t if not math.isnan(r.adv_seen_t) else r.t_executed
        predict_at.append(min(seen, r.t_executed, until))
        events.append((predict_at[i], 0, i))
        events.append((r.t_executed, 1, i))
    model = NaiveBayes(outcomes)
    predictions: dict[int, int] = {}
    for _, kind, i in sorted(events):
        record = public[i]
        # what it had observed when it predicted: nothing known only after that moment
        observed = observer.observe(record, at=predict_at[i])
        if kind == 1:
            model.learn(observed, record.order.outcome)
        elif record.adv_read_t < record.t_executed:
            predictions[i] = record.order.outcome
        else:
            predictions[i] = model.predict(observed)
    return Inference(
        tuple(r.order.outcome for r in public),
        tuple(predictions[i] for i in range(len(public))),
        tuple(public),
    )


class Leakage(Component):
    """Direction inference, early decryption and the signal's mutual information.

    Args:
        sim: the host.
        outcomes: how many outcomes each market has (``market.outcomes``).
        privacy: ``[privacy]`` (the order flow decides which orders were sealed, and until when).
        horizon_s: the run's end.
    """

    def __init__(self, sim: Host, *, outcomes: int, privacy: Privacy, horizon_s: float) -> None:
        super().__init__(sim)
        self.outcomes, self.privacy, self.horizon_s = outcomes, privacy, horizon_s

    def metrics(self) -> dict[str, float]:
        """The ``privacy.*`` leakage metrics of SPEC section 4."""
        sim = self.sim
        inference = infer_directions(
            sim.records.orders,
            outcomes=self.outcomes,
            spies=sim.world.spies,
            until=self.horizon_s,
        )
        pairs = []
        for record, prediction in zip(inference.records, inference.predictions, strict=True):
            spec = sim.world.traders[record.order.trader] if record.kind == "informed" else None
            if spec is not None:
                pairs.append((spec.signals[record.order.market], prediction))
        return {
            "privacy.direction_inference_acc": inference.accuracy(),
            "privacy.direction_inference_advantage": inference.advantage(),
            "privacy.signal_mi_bits": mutual_information_bits(pairs),
            "privacy.early_decrypt_fraction": self._early_fraction(),
        }

    def _early_fraction(self) -> float:
        """Share of encrypted orders the adversary read before their batch (or execution) closed."""
        mode = self.privacy.order_flow
        if mode not in ("threshold", "operator"):
            return NAN
        interval = self.privacy.batch_interval_s
        sealed = [
            r
            for r in self.sim.records.orders
            if r.honest and (r.batch_id >= 0 or mode == "operator")
        ]
        if not sealed:
            return NAN

        def deadline(r: OrderRecord) -> float:
            if mode == "threshold":
                return (r.batch_id + 1) * interval
            # operator: before execution; an order never executed was read before it, if at all
            return r.t_executed if not math.isnan(r.t_executed) else math.inf

        return sum(1 for r in sealed if r.adv_read_t < deadline(r)) / len(sealed)
