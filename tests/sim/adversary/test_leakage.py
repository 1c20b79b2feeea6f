"""The adversary's estimators (sim.adversary.leakage), each checked against an independent route.

Everything here is built by hand: tiny training sets, hand-made order records and a stand-in
for the host, so every test runs in milliseconds and no simulation is started.

- naive Bayes: posteriors recomputed with exact fractions from the textbook formulas
  (add-one smoothed prior and likelihoods, unseen values skipped) and compared by argmax;
- Miller–Madow entropy and mutual information: closed-form hand values, in bits, and
  statistical checks over many seeds (an interval, never one draw);
- online direction inference: a sequence whose accuracy differs under every way of
  cheating on learn-after-predict, recomputed by brute force;
- the ``Leakage`` component's ``privacy.*`` metrics, NaN where they do not apply.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from fractions import Fraction
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from market.types import MICRO, Order
from sim.adversary.leakage import (
    FEATURES,
    Inference,
    Leakage,
    NaiveBayes,
    Observer,
    entropy_mm,
    infer_directions,
    mutual_information_bits,
)
from sim.results.records import OrderRecord

NAN = math.nan
ENVELOPE = ("sender", "size", "origin")
"""The hand-computed inference tests observe the envelope only (the other features below)."""
LN2 = math.log(2)

# ---------------------------------------------------------------------------------------------
# An independent naive Bayes: exact fractions straight from the formulas
#   P(c)          = (N_c + 1) / (N + K)
#   P(x_i = v | c) = (N_{i,v,c} + 1) / (N_c + V_i)   V_i: distinct values of feature i seen
# with None (not observed) and values never seen in training left out of the product.
# ---------------------------------------------------------------------------------------------

Example = tuple[tuple[Hashable, ...], int]


def _posteriors(
    train: Sequence[Example], classes: int, query: Sequence[Hashable]
) -> list[Fraction]:
    """Unnormalised posteriors of every class, exactly."""
    total = len(train)
    seen = [{x[i] for x, _ in train if x[i] is not None} for i in range(len(query))]
    out = []
    for label in range(classes):
        n = sum(1 for _, y in train if y == label)
        p = Fraction(n + 1, total + classes)
        for i, value in enumerate(query):
            if value is None or value not in seen[i]:
                continue
            count = sum(1 for x, y in train if y == label and x[i] == value)
            p *= Fraction(count + 1, n + len(seen[i]))
        out.append(p)
    return out


def _unique_argmax(posteriors: Sequence[Fraction]) -> int | None:
    """The best class, or None when the best value is shared (tie rules are tested apart)."""
    best = max(posteriors)
    return posteriors.index(best) if posteriors.count(best) == 1 else None


def _trained(train: Sequence[Example], classes: int) -> NaiveBayes:
    model = NaiveBayes(classes)
    for x, y in train:
        model.learn(x, y)
    return model


def test_naive_bayes_posterior_by_hand() -> None:
    # class 0: (a, x); class 1: (a, y), (b, y), (b, x)
    train: list[Example] = [(("a", "x"), 0), (("a", "y"), 1), (("b", "y"), 1), (("b", "x"), 1)]
    model = _trained(train, 2)
    # query (a, x): P(0) = 2/6, P(a|0) = 2/3, P(x|0) = 2/3  ->  8/54 = 0.148
    #               P(1) = 4/6, P(a|1) = 2/5, P(x|1) = 2/5  ->  16/150 = 0.107
    assert _posteriors(train, 2, ("a", "x")) == [Fraction(8, 54), Fraction(16, 150)]
    assert model.predict(("a", "x")) == 0
    # query (b, y): class 0 gets 2/6 * 1/3 * 1/3 = 0.037, class 1 gets 4/6 * 3/5 * 3/5 = 0.24
    assert model.predict(("b", "y")) == 1
    # query (a, y): 2/6 * 2/3 * 1/3 = 0.074 against 4/6 * 2/5 * 3/5 = 0.16
    assert model.predict(("a", "y")) == 1


def test_naive_bayes_matches_brute_force_on_random_small_training_sets() -> None:
    rng = random.Random(20261203)
    alphabets = (("a", "b", "c"), (10, 20), ("p", "q", "r"))
    checked = 0
    for _ in range(40):
        classes = rng.choice((2, 3))
        train: list[Example] = []
        for _ in range(rng.randint(0, 9)):
            x = tuple(rng.choice((*alphabet, None)) for alphabet in alphabets)
            train.append((x, rng.randrange(classes)))
        model = _trained(train, classes)
        # every query, with values never seen in training ("z", 99, "s") and None
        for query in itertools.product(
            *[(*a, u, None) for a, u in zip(alphabets, "z9s", strict=True)]
        ):
            expected = _unique_argmax(_posteriors(train, classes, query))
            if expected is not None:
                assert model.predict(query) == expected, (train, query)
                checked += 1
    assert checked > 1_500


def test_add_one_smoothing_of_the_likelihoods() -> None:
    # P(0) = 2/5, P(a|0) = (1+1)/(1+2) = 2/3 -> 4/15;  P(1) = 3/5, P(a|1) = (1+1)/(2+2) -> 3/10
    # without the +1 on the counts: 2/5 * 1/1 = 0.4 against 3/5 * 1/2 = 0.3, class 0 would win
    train: list[Example] = [(("b",), 1), (("a",), 1), (("a",), 0)]
    assert _posteriors(train, 2, ("a",)) == [Fraction(4, 15), Fraction(3, 10)]
    assert _trained(train, 2).predict(("a",)) == 1


def test_add_one_smoothing_of_the_prior() -> None:
    # P(0) = 2/8, P(b|0) = 2/3 -> 1/6;  P(1) = 6/8, P(b|1) = (0+1)/(5+2) -> 3/28
    # with an unsmoothed prior: 1/6 * 2/3 = 0.111 against 5/6 * 1/7 = 0.119, class 1 would win
    train: Sequence[Example] = [(("b",), 0)] + [(("a",), 1)] * 5
    assert _posteriors(train, 2, ("b",)) == [Fraction(1, 6), Fraction(3, 28)]
    assert _trained(train, 2).predict(("b",)) == 0


def test_unseen_and_missing_values_are_skipped() -> None:
    # one example of class 1, four of class 0
    train: Sequence[Example] = [((1, "x"), 1)] + [((2, "y"), 0)] * 4
    model = _trained(train, 2)
    # a fresh sender (99) or none at all weighs nothing: x alone decides,
    # P(1) 2/7 * P(x|1) 2/3 = 0.19 against P(0) 5/7 * P(x|0) 1/6 = 0.12
    assert model.predict((99, "x")) == model.predict((None, "x")) == 1
    # with every feature unseen or missing the prior alone decides: the more common class 0
    assert model.predict((99, "unseen")) == model.predict((None, None)) == 0
    # a value seen only for another feature is unseen for this one
    assert model.predict(("x", 1)) == 0


def test_an_unseen_value_is_skipped_where_scoring_it_would_flip_the_prediction() -> None:
    # class 0: 3 examples of sender 1; class 1: 1 example of sender 2. Query (sender 3, size 7)
    # with size 7 seen once for each class. Scoring the fresh sender 3 would weigh
    # 1/(3+2) for class 0 against 1/(1+2) for class 1.
    train: list[Example] = [((1, 7), 0), ((1, 5), 0), ((1, 5), 0), ((2, 7), 1)]
    model = _trained(train, 2)
    # skipped: P(0) = 4/6 * P(7|0) = 2/5 -> 0.267;  P(1) = 2/6 * P(7|1) = 2/3 -> 0.222: class 0
    assert _unique_argmax(_posteriors(train, 2, (3, 7))) == 0
    # scored (the bug): 0.267 * 1/5 = 0.053 against 0.222 * 1/3 = 0.074: class 1
    assert model.predict((3, 7)) == 0


def test_missing_values_are_not_learned_as_a_value() -> None:
    model = _trained([((None,), 1), ((None,), 1), (("a",), 0)], 2)
    assert model.seen == {0: {"a"}}
    assert (0, None, 1) not in model.counts
    assert model.prior == Counter({1: 2, 0: 1})


def test_tie_rules_more_common_class_then_lower_index() -> None:
    # nothing learned: every class scores its prior 1/3, the lowest index wins
    assert NaiveBayes(3).predict(("a",)) == 0
    # equal evidence and equal counts for classes 1 and 2: the lower index
    model = _trained([(("a",), 1), (("a",), 2)], 3)
    assert _posteriors([(("a",), 1), (("a",), 2)], 3, ("a",)) == [
        Fraction(1, 5),
        Fraction(2, 5),
        Fraction(2, 5),
    ]
    assert model.predict(("a",)) == 1
    # uninformative evidence (unseen value): the more common class, though not the lowest index
    model = _trained([(("a",), 2), (("b",), 2), (("c",), 2), (("a",), 1)], 3)
    assert model.predict(("z",)) == 2
    assert model.predict((None,)) == 2


def test_an_exact_posterior_tie_goes_to_the_more_common_class() -> None:
    # class 0: one example with value a; class 1: three examples, one with a, two unobserved.
    # P(0|a) ∝ 2/6 * (1+1)/(1+1) = 1/3 and P(1|a) ∝ 4/6 * (1+1)/(3+1) = 1/3: an exact tie
    # between a class seen once and a class seen three times.
    train: list[Example] = [(("a",), 0), (("a",), 1), ((None,), 1), ((None,), 1)]
    assert _posteriors(train, 2, ("a",)) == [Fraction(1, 3), Fraction(1, 3)]
    assert _trained(train, 2).predict(("a",)) == 1  # documented: ties to the more common class


# ---------------------------------------------------------------------------------------------
# Miller–Madow entropy and mutual information (bits)
# ---------------------------------------------------------------------------------------------


def _plugin_bits(counts: Sequence[int]) -> float:
    total = sum(counts)
    return -sum(c / total * math.log2(c / total) for c in counts if c > 0)


def test_entropy_mm_by_hand_in_bits() -> None:
    # counts 3, 1: plug-in H = -(3/4 log2 3/4 + 1/4 log2 1/4) = 0.811278 bits; Miller (1955)
    # adds (m - 1)/(2N) = 1/8 *nats*, that is 1/(8 ln 2) = 0.180337 bits: 0.991615 bits in all
    assert entropy_mm([3, 1]) == pytest.approx(0.8112781244591328 + 1 / (8 * LN2), abs=1e-12)
    assert entropy_mm([3, 1]) == pytest.approx(0.991615, abs=1e-6)
    # counts 2, 1, 1: plug-in 1.5 bits, m = 3, N = 4: + 2/8 nats
    assert entropy_mm([2, 1, 1]) == pytest.approx(1.5 + 2 / (8 * LN2), abs=1e-12)
    # uniform 5, 5, 5, 5: log2 4 = 2 bits, + 3/40 nats
    assert entropy_mm([5, 5, 5, 5]) == pytest.approx(2 + 3 / (40 * LN2), abs=1e-12)


def test_entropy_mm_counts_only_non_empty_bins() -> None:
    assert entropy_mm([3, 0, 1, 0]) == pytest.approx(entropy_mm([3, 1]), abs=1e-15)
    assert entropy_mm([0, 7, 0]) == 0.0  # one bin: no uncertainty and no correction
    assert entropy_mm(iter([2, 0, 2])) == pytest.approx(1 + 1 / (8 * LN2), abs=1e-12)


def test_entropy_of_nothing_is_nan() -> None:
    assert math.isnan(entropy_mm([]))
    assert math.isnan(entropy_mm([0, 0]))
    assert math.isnan(mutual_information_bits([]))


def test_entropy_mm_removes_the_plugin_bias_on_average() -> None:
    # uniform over 8 bins, N = 80: the plug-in estimate is biased low by about 7/(160 ln 2) =
    # 0.063 bits; Miller–Madow's residual bias is O(1/N²), about 0.001 bits here.
    k, n, seeds = 8, 80, 200
    mm, plugin = [], []
    for seed in range(seeds):
        draws = np.random.default_rng(seed).integers(k, size=n)
        counts = np.bincount(draws, minlength=k).tolist()
        mm.append(entropy_mm(counts))
        plugin.append(_plugin_bits(counts))
    mean, se = float(np.mean(mm)), float(np.std(mm, ddof=1)) / math.sqrt(seeds)
    assert abs(mean - math.log2(k)) < 4 * se + 0.002
    assert math.log2(k) - float(np.mean(plugin)) > 0.04  # the test can see the bias it removes


def test_mutual_information_by_hand() -> None:
    # (0,0) x2, (0,1), (1,0), (1,1) x2 over N = 6: H(X) = H(Y) = 1 bit, H(X,Y) = 1.918296 bits,
    # plug-in I = 0.081704 bits; the corrections add (1 + 1 - 3)/(2N) nats = -1/(12 ln 2) bits
    pairs = [(0, 0), (0, 0), (0, 1), (1, 0), (1, 1), (1, 1)]
    h_joint = -(2 / 3 * math.log2(1 / 3) + 1 / 3 * math.log2(1 / 6))
    assert h_joint == pytest.approx(1.918296, abs=1e-6)
    expected = 2 - h_joint - 1 / (12 * LN2)
    assert expected == pytest.approx(-0.038520, abs=1e-6)  # MM can go below 0: never clipped
    assert mutual_information_bits(pairs) == pytest.approx(expected, abs=1e-12)
    # labels are opaque: any hashables, in either half
    relabelled = [("u" if x else "v", (y, "t")) for x, y in pairs]
    assert mutual_information_bits(relabelled) == pytest.approx(expected, abs=1e-12)


def test_independent_variables_give_about_zero_bits_over_many_seeds() -> None:
    # X uniform on 4 values, Y on 4 values, independent, N = 500 per draw, 40 seeds. The plug-in
    # MI is biased up by about (4-1)(4-1)/(2N ln 2) = 0.013 bits; Miller–Madow removes it, so
    # the mean over seeds must sit within 4 standard errors of 0 (and each draw near 0).
    n, seeds = 500, 40
    estimates, plugins = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        x, y = rng.integers(4, size=n).tolist(), rng.integers(4, size=n).tolist()
        pairs = list(zip(x, y, strict=True))
        estimates.append(mutual_information_bits(pairs))
        joint = list(Counter(pairs).values())
        plugins.append(
            _plugin_bits(list(Counter(x).values()))
            + _plugin_bits(list(Counter(y).values()))
            - _plugin_bits(joint)
        )
    mean, se = float(np.mean(estimates)), float(np.std(estimates, ddof=1)) / math.sqrt(seeds)
    assert mean - 4 * se < 0 < mean + 4 * se
    assert max(abs(e) for e in estimates) < 0.03
    plugin_mean = float(np.mean(plugins))
    assert (
        plugin_mean - 4 * se > 0
    )  # the uncorrected estimate is visibly biased: the test has power
    assert plugin_mean == pytest.approx(9 / (2 * n * LN2), rel=0.3)


def test_a_deterministic_function_gives_the_entropy_of_x() -> None:
    rng = np.random.default_rng(5)
    p = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    x = rng.choice(5, size=5_000, p=p).tolist()
    h_true = float(-(p * np.log2(p)).sum())
    # a bijection: I(X; f(X)) = H(X); all three histograms coincide, so the estimate is
    # exactly the Miller–Madow entropy of X
    pairs = [(v, (3 * v + 1) % 5) for v in x]
    mi = mutual_information_bits(pairs)
    assert mi == pytest.approx(entropy_mm(Counter(x).values()), abs=1e-12)
    assert mi == pytest.approx(h_true, abs=0.04)  # sd about 0.01 bits at N = 5000
    # a many-to-one function: I(X; f(X)) = H(f(X))
    parity = [(v, v % 2) for v in x]
    h_parity = -sum(q * math.log2(q) for q in (p[0::2].sum(), p[1::2].sum()))
    assert mutual_information_bits(parity) == pytest.approx(h_parity, abs=0.04)
    assert mutual_information_bits([(v, v) for v in x]) == pytest.approx(mi, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Hand-built order records
# ---------------------------------------------------------------------------------------------


def _record(
    i: int,
    outcome: int,
    *,
    executed: float = NAN,
    seen: float = NAN,
    read: float = NAN,
    sender: int = -1,
    size: int = -1,
    kind: str = "noise",
    trader: int = 0,
    market: int = 0,
    batch: int = -1,
    flood: Any = None,
) -> OrderRecord:
    """An order as a run would have recorded it (executed when ``executed`` is a time)."""
    order = Order(trader, i, market, outcome, MICRO, MICRO // 2)
    record = OrderRecord(i, order, kind, node=0, t_submit=0.0, wire_bytes=32)
    if not math.isnan(executed):
        record.status, record.t_executed, record.block = "executed", executed, int(executed)
    record.adv_seen_t, record.adv_read_t = seen, read
    record.adv_sender, record.adv_size = sender, size
    record.batch_id, record.flood = batch, flood
    return record


def _flood(arrivals: Sequence[float], first_from: Sequence[int]) -> Any:
    """What the first-spy estimator reads of a message: arrival times and first senders."""
    return SimpleNamespace(arrivals=list(arrivals), first_from=list(first_from))


def _online_reference(records: Sequence[OrderRecord], outcomes: int) -> list[int]:
    """Brute force: for each order, a fresh model of the orders public strictly before."""
    predictions = []
    for r in records:
        at = min(r.adv_seen_t, r.t_executed) if not math.isnan(r.adv_seen_t) else r.t_executed
        if r.adv_read_t < r.t_executed:
            predictions.append(r.order.outcome)
            continue
        known = [q for q in records if q.t_executed < at]
        train: list[Example] = [((q.adv_sender,), q.order.outcome) for q in known]
        posteriors = _posteriors(train, outcomes, (r.adv_sender,))
        best = max(posteriors)
        predictions.append(posteriors.index(best))  # (no flood, no size: sender only)
    return predictions


def _learn_after_predict_sequence() -> list[OrderRecord]:
    """Five orders from senders 7 and 8 whose accuracy changes under every way of cheating."""
    return [
        _record(0, 1, sender=7, seen=1.0, executed=10.0),
        _record(1, 1, sender=7, seen=5.0, executed=20.0),  # seen before order 0 is public
        _record(2, 0, sender=8, executed=20.0),  # seen only on chain, in order 1's block
        _record(3, 1, sender=7, executed=30.0),  # seen only on chain: predicted at its own block
        _record(4, 0, sender=8, seen=25.0, executed=40.0),
    ]


def test_infer_directions_predicts_before_it_learns() -> None:
    records = _learn_after_predict_sequence()
    inference = infer_directions(records, outcomes=2, spies=frozenset(), until=100.0)
    # by hand, the model at each prediction:
    # order 0 at t=1: nothing learned, both classes 1/2: class 0 (miss)
    # order 1 at t=5: still nothing (order 0 is public at 10): class 0 (miss)
    # order 2 at t=20: knows order 0 only (orders 1 and 2 become public at 20, after it):
    #   sender 8 unseen, prior 1/3 against 2/3: class 1 (miss)
    # order 4 at t=25: knows 0, 1, 2: P(0) 2/5 * P(8|0) 2/3 = 0.27 > P(1) 3/5 * 1/4 = 0.15: hit
    # order 3 at t=30: P(0) 2/5 * 1/3 = 0.13 < P(1) 3/5 * 3/4 = 0.45: hit
    assert inference.predictions == (0, 0, 1, 1, 0)
    assert inference.truths == (1, 1, 0, 1, 0)
    assert list(inference.predictions) == _online_reference(records, 2)
    assert inference.accuracy() == pytest.approx(2 / 5)
    # the most common outcome (1) is 3 of 5: advantage 2/5 - 3/5, negative and not clipped
    assert inference.advantage() == pytest.approx(-1 / 5)
    # predicting at execution instead of when first seen, or learning a block's truths before
    # predicting its orders, would both give 3/5; training on everything first gives 5/5


def test_infer_directions_is_in_time_order_whatever_the_record_order() -> None:
    records = _learn_after_predict_sequence()
    shuffled = [records[i] for i in (3, 0, 4, 2, 1)]
    inference = infer_directions(shuffled, outcomes=2, spies=frozenset(), until=100.0)
    assert inference.records == tuple(shuffled)
    assert inference.predictions == (1, 0, 0, 1, 0)  # each order keeps its own prediction
    assert inference.accuracy() == pytest.approx(2 / 5)


def test_an_order_read_before_it_executed_is_named_and_still_learned() -> None:
    records = [
        _record(0, 1, sender=7, seen=1.0, read=3.0, executed=10.0),  # read early: named
        _record(1, 0, sender=7, seen=12.0, read=20.0, executed=20.0),  # read only at execution
        _record(2, 1, sender=7, seen=15.0, executed=30.0),
    ]
    inference = infer_directions(records, outcomes=2, spies=frozenset(), until=100.0)
    # order 0: named from its content though nothing is learned yet (the model would say 0);
    # orders 1 and 2 (at 12 and 15) know order 0 only: sender 7 -> class 1 (miss, then hit)
    assert inference.predictions == (1, 1, 1)
    assert inference.accuracy() == pytest.approx(2 / 3)
    assert inference.advantage() == pytest.approx(2 / 3 - 2 / 3)


def test_frontrunner_orders_and_orders_never_public_are_neither_judged_nor_learned() -> None:
    records = [
        *(
            _record(10 + j, 0, sender=7, seen=0.1, executed=0.5, kind="frontrunner")
            for j in range(3)
        ),
        _record(0, 1, sender=7, seen=1.0, executed=10.0),
        _record(20, 0, sender=7, seen=2.0),  # never reached the chain
        _record(1, 1, sender=7, seen=15.0, executed=20.0),
    ]
    inference = infer_directions(records, outcomes=2, spies=frozenset(), until=100.0)
    assert inference.records == (records[3], records[5])
    assert inference.truths == (1, 1)
    # order 1 at 15 knows order 0 only: sender 7 -> 1. Had it learned the front-runner's three
    # (7 -> 0) it would say P(0) 4/6 * 4/4 > P(1) 2/6 * 2/2: class 0
    assert inference.predictions == (0, 1)
    assert inference.accuracy() == pytest.approx(1 / 2)


def test_inference_accuracy_and_advantage_by_hand() -> None:
    inference = Inference((2, 2, 0, 1), (2, 0, 0, 1), ())
    assert inference.accuracy() == pytest.approx(3 / 4)
    assert inference.advantage() == pytest.approx(3 / 4 - 2 / 4)  # not 3/4 - 1/3 (uniform)
    empty = Inference((), (), ())
    assert math.isnan(empty.accuracy())
    assert math.isnan(empty.advantage())
    assert math.isnan(infer_directions([], outcomes=2, spies=frozenset(), until=1.0).accuracy())


def _envelope(record: OrderRecord, spies: Sequence[int], *, at: float) -> tuple[Any, ...]:
    observer = Observer.of([record], spies=frozenset(spies), horizon_s=100.0, use=ENVELOPE)
    return observer.observe(record, at=at)[:3]


def test_envelope_features_are_sender_size_and_first_spy_origin() -> None:
    # spies 1 and 3; spy 1 hears it first (t=.5) from node 2, spy 3 later (t=.9) from node 1
    flood = _flood([0.0, 0.5, 0.2, 0.9], [-1, 2, 0, 1])
    record = _record(0, 0, sender=3, size=120, flood=flood, executed=5.0)
    assert _envelope(record, [1, 3], at=10.0) == (3, 120, 2)
    assert _envelope(record, [1, 3], at=0.7) == (3, 120, 2)
    assert _envelope(record, [1, 3], at=0.4) == (3, 120, None)  # no spy has heard it yet
    assert _envelope(record, [], at=10.0) == (3, 120, None)
    # node 0 and sender 0 are real ids, -1 means "not observed"
    own = _record(1, 0, sender=0, size=0, flood=_flood([0.0, 0.1], [-1, 0]))
    assert _envelope(own, [1], at=1.0) == (0, 0, 0)
    assert _envelope(_record(2, 0), [1, 3], at=10.0) == (None, None, None)


def test_timing_is_the_tenth_of_the_run_it_was_seen_in() -> None:
    observer = Observer.of([], spies=frozenset(), horizon_s=200.0, use=("timing",))
    timing = FEATURES.index("timing")
    record = _record(0, 0)
    at = [0.0, 19.99, 20.0, 105.0, 199.9, 200.0]
    assert [observer.observe(record, at=t)[timing] for t in at] == [0, 0, 1, 5, 9, 9]
    assert set(observer.observe(record, at=50.0)) == {2, None}  # only timing is observed


def test_batch_counts_the_batch_orders_seen_by_then_in_powers_of_two() -> None:
    batch = [_record(i, 0, batch=4, seen=float(i)) for i in range(1, 6)]
    other = [_record(9, 1, batch=5, seen=0.5), _record(10, 1, seen=0.5)]  # no batch: not counted
    observer = Observer.of(batch + other, spies=frozenset(), horizon_s=100.0, use=("batch",))
    where = FEATURES.index("batch")

    def seen_in_batch(at: float) -> Any:
        return observer.observe(batch[0], at=at)[where]

    # seen by then: 0 (nothing known), 1, 2-3, 4-5 orders of batch 4 -> None, 1, 2, 3
    assert [seen_in_batch(t) for t in (0.5, 1.0, 2.0, 3.5, 4.0, 5.0)] == [None, 1, 2, 2, 3, 3]
    assert observer.observe(other[1], at=50.0)[where] is None  # an order outside any batch


def test_history_is_the_latest_trade_executed_strictly_before() -> None:
    trades = [
        _record(0, 1, executed=10.0),
        _record(1, 0, executed=20.0),
        _record(2, 2, executed=20.0),
        _record(3, 2, kind="frontrunner", executed=30.0),  # a public trade like any other
    ]
    rejected = _record(4, 1, executed=25.0)
    rejected.status = "rejected"  # on chain, but nothing was bought
    observer = Observer.of([*trades, rejected], spies=frozenset(), horizon_s=100.0)
    where = FEATURES.index("history")
    record = _record(9, 0)
    # at 20 only the trade at 10 is known: the block at 20 is the order's own block
    at = [5.0, 10.0, 15.0, 20.0, 27.0, 31.0]
    assert [observer.observe(record, at=t)[where] for t in at] == [None, None, 1, 1, 2, 2]


def test_the_public_history_lets_the_adversary_follow_a_streak() -> None:
    # unlinkable sealed orders in streaks of four (1111 0000 1111 0000), each seen after the one
    # before it executed: nothing in the envelope tells them apart, but "the same outcome as the
    # last trade" is right 3 times in 4 once it has been learnt
    outcomes = [1, 1, 1, 1, 0, 0, 0, 0] * 2
    records = [
        _record(i, o, seen=2.0 * i + 0.5, executed=2.0 * i + 1.0) for i, o in enumerate(outcomes)
    ]
    kw: dict[str, Any] = {"outcomes": 2, "spies": frozenset(), "until": 100.0}
    envelope = infer_directions(records, use=ENVELOPE, **kw).accuracy()
    history = infer_directions(records, use=("history",), **kw).accuracy()
    # envelope alone: the prior, which follows the majority of what is public (6 of 16 right);
    # history: wrong where a streak turns and while the likelihoods are still being learnt
    # (11 of 16)
    assert envelope <= 0.5
    assert history >= 0.6
    assert history > envelope


def test_infer_directions_uses_the_first_spy_origin() -> None:
    # two orders heard by spy 1 from node 4 (outcome 1) and two from node 5 (outcome 0),
    # senders unlinkable (-1); then one order of each origin to predict
    def heard_from(node: int) -> Any:
        return _flood([0.0, 0.3, 0.0, 0.0, 0.0, 0.0], [-1, node, -1, -1, -1, -1])

    records = [
        _record(0, 1, seen=1.0, executed=10.0, flood=heard_from(4)),
        _record(1, 0, seen=1.0, executed=10.0, flood=heard_from(5)),
        _record(2, 0, seen=11.0, executed=20.0, flood=heard_from(5)),
        _record(3, 1, seen=12.0, executed=20.0, flood=heard_from(4)),
    ]
    inference = infer_directions(records, outcomes=2, spies=frozenset({1}), until=100.0)
    assert inference.predictions == (0, 0, 0, 1)  # order 0: tie at empty model -> class 0
    no_spies = infer_directions(records, outcomes=2, spies=frozenset(), until=100.0)
    assert no_spies.predictions == (0, 0, 0, 0)  # no origin: equal priors -> class 0


def test_a_forfeited_commitment_is_neither_predicted_nor_learnt() -> None:
    # three class-1 commitments forfeited (their orders were never revealed), then a sender
    # whose envelope the adversary saw before: had it learnt the forfeited labels, the sender's
    # history would make it predict 1
    forfeited = []
    for i in range(3):
        record = _record(i, 1, seen=float(i), sender=7, size=44)
        record.forfeit(height=i + 1, t=float(i) + 0.5)
        forfeited.append(record)
    public = [
        _record(3, 0, seen=4.0, executed=5.0),
        _record(4, 1, seen=6.0, sender=7, size=44, executed=8.0),
    ]
    inference = infer_directions(forfeited + public, outcomes=2, spies=frozenset(), until=100.0)
    assert inference.records == tuple(public)  # forfeited orders are not evaluated
    assert inference.predictions == (0, 0)  # nothing learnt of sender 7: the prior (tie: 0)


def test_a_spy_report_after_execution_is_not_used_to_predict() -> None:
    # orders 0-2 are public by t=5; spy 1 heard order 0 from node 4, orders 1 and 2 from nobody
    # it could tell. Order 3 is seen first on chain at t=10; spy 1 hears it from node 4 only at
    # t=15. Before execution the adversary knew nothing of it: prior 3/5 (class 0) against 2/5.
    def heard_from(node: int, t: float) -> Any:
        return _flood([0.0, t, 0.0, 0.0, 0.0], [-1, node, -1, -1, -1])

    records = [
        _record(0, 1, seen=0.5, executed=5.0, flood=heard_from(4, 0.5)),
        _record(1, 0, seen=0.5, executed=5.0),
        _record(2, 0, seen=0.5, executed=5.0),
        _record(3, 1, executed=10.0, flood=heard_from(4, 15.0)),
    ]
    inference = infer_directions(records, outcomes=2, spies=frozenset({1}), until=100.0)
    assert inference.predictions[3] == 0


# ---------------------------------------------------------------------------------------------
# The Leakage component on a stand-in host
# ---------------------------------------------------------------------------------------------


def _leakage(
    orders: list[OrderRecord],
    *,
    mode: str = "threshold",
    interval: float = 30.0,
    outcomes: int = 2,
    signals: Sequence[tuple[int, ...]] = ((1, 0), (0, 1), (-1, -1)),
) -> dict[str, float]:
    """``Leakage.metrics()`` on a host that has only what the component reads."""
    kinds = ["noise" if s[0] < 0 else "informed" for s in signals]
    host = SimpleNamespace(
        records=SimpleNamespace(orders=orders),
        world=SimpleNamespace(
            spies=frozenset(),
            traders=tuple(
                SimpleNamespace(trader=i, kind=k, node=0, signals=s)
                for i, (k, s) in enumerate(zip(kinds, signals, strict=True))
            ),
        ),
    )
    privacy = SimpleNamespace(order_flow=mode, batch_interval_s=interval)
    leakage = Leakage(
        cast(Any, host), outcomes=outcomes, privacy=cast(Any, privacy), horizon_s=1000.0
    )
    return leakage.metrics()


NAMES = (
    "privacy.direction_inference_acc",
    "privacy.direction_inference_advantage",
    "privacy.signal_mi_bits",
    "privacy.early_decrypt_fraction",
)


def _threshold_run() -> list[OrderRecord]:
    """Traders 0 and 1 informed (signals (1, 0) and (0, 1)), trader 2 noise; batches of 30 s."""

    def informed(i: int, trader: int, **kw: Any) -> OrderRecord:
        return _record(i, kind="informed", trader=trader, sender=trader, **kw)

    return [
        # batch 0 closes at 30, executes at 35
        informed(0, 0, outcome=1, market=0, batch=0, seen=1.0, read=10.0, executed=35.0),
        informed(1, 1, outcome=0, market=0, batch=0, seen=2.0, read=31.0, executed=35.0),
        # batch 1 closes at 60, executes at 65
        _record(2, 0, trader=2, sender=2, market=1, batch=1, seen=40.0, executed=65.0),
        informed(3, 0, outcome=1, market=1, batch=1, seen=50.0, executed=65.0),
        informed(6, 1, outcome=1, market=1, batch=1, seen=55.0, executed=65.0),
        _record(4, 1, kind="frontrunner", trader=3, batch=1, seen=40.0, read=40.0, executed=64.0),
        # batch 2 closes at 90; the run ends first
        informed(5, 1, outcome=0, market=1, batch=2, seen=70.0, read=70.0),
    ]


def test_leakage_metrics_from_hand_built_records() -> None:
    metrics = _leakage(_threshold_run())
    assert set(metrics) == set(NAMES)
    # inference over the public non-front-runner orders 0, 1, 2, 3, 6, every feature observed:
    #   0 and 1 were read before execution: named (1, 0). Learnt at 35 as seen at 1 and 2:
    #   order 0 (sender 0, timing 0, batch 1 seen: value 1) -> 1; order 1 (sender 1, timing 0,
    #   batch 2 seen: value 2) -> 0. Sizes, origins and histories unobserved (None).
    #   2 at 40: sender 2 unseen; batch 1 had 2 orders seen (2 and the front-runner's 4): value
    #     2, likelihood 2/3 for 0 against 1/3; history 1 (35's trades) unseen: -> 0 (hit)
    #   3 at 50: sender 0 favours 1 by 2/3 to 1/3, batch (3 seen: value 2) favours 0 as much:
    #     a tie, to the lower index: -> 0 (miss)
    #   6 at 55: sender 1 favours 0, batch (4 seen: value 3) unseen: -> 0 (miss)
    #   truths 1, 0, 0, 1, 1; predictions 1, 0, 0, 0, 0: 3/5, most common outcome 3/5
    #   (with the envelope alone it was 4/5: more features are not always better with 2 examples)
    assert metrics["privacy.direction_inference_acc"] == pytest.approx(3 / 5)
    assert metrics["privacy.direction_inference_advantage"] == pytest.approx(0.0, abs=1e-12)
    # informed orders only, (signal for its market, prediction): 0 (1, 1), 1 (0, 0),
    # 3 (trader 0's market-1 signal 0, 0), 6 (trader 1's market-1 signal 1, 0)
    # plug-in: H(X) = ln 2, H(Y) = H(1/4), H(X, Y) = 1.5 ln 2 nats, so I = 0.75 ln(4/3) nats;
    # the Miller-Madow corrections (1 + 1 - 2)/(2 * 4) cancel
    assert metrics["privacy.signal_mi_bits"] == pytest.approx(0.75 * math.log2(4 / 3), abs=1e-12)
    # sealed: every non-front-runner order in a batch (0, 1, 2, 3, 6, 5); read before its batch
    # closed: 0 (10 < 30) and 5 (70 < 90); 1 was read at 31, after batch 0 closed
    assert metrics["privacy.early_decrypt_fraction"] == pytest.approx(2 / 6)


def test_leakage_metrics_are_nan_without_orders() -> None:
    for mode in ("threshold", "operator", "transparent"):
        metrics = _leakage([], mode=mode)
        for name in NAMES:
            assert math.isnan(metrics[name]), (mode, name)


def test_only_front_runner_orders_leave_every_metric_nan() -> None:
    run = [_record(0, 1, kind="frontrunner", batch=0, seen=1.0, read=1.0, executed=35.0)]
    metrics = _leakage(run)
    for name in NAMES:
        assert math.isnan(metrics[name]), name


def test_early_decrypt_fraction_only_applies_to_encrypted_flows() -> None:
    for mode in ("transparent", "commit_reveal"):
        metrics = _leakage(_threshold_run(), mode=mode)
        assert math.isnan(metrics["privacy.early_decrypt_fraction"]), mode
        assert metrics["privacy.direction_inference_acc"] == pytest.approx(3 / 5)


def test_early_decrypt_fraction_is_zero_not_nan_when_nothing_was_read() -> None:
    run = [_record(i, i % 2, batch=0, seen=1.0, executed=35.0) for i in range(3)]
    run.append(_record(3, 1, batch=1, seen=40.0))  # in a batch, never executed, never read
    metrics = _leakage(run)
    assert metrics["privacy.early_decrypt_fraction"] == 0.0
    # only noise traders: no signals, so no mutual information (NaN, not 0)
    assert math.isnan(metrics["privacy.signal_mi_bits"])


def test_early_decrypt_fraction_in_operator_mode_is_against_execution() -> None:
    run = [
        _record(0, 1, seen=1.0, read=5.0, executed=10.0),  # read before execution
        _record(1, 0, seen=1.0, read=10.0, executed=10.0),  # read as it executed: not early
        _record(2, 1, seen=1.0, executed=10.0),  # never read
        _record(3, 1, kind="frontrunner", read=5.0, executed=10.0),
    ]
    metrics = _leakage(run, mode="operator")
    assert metrics["privacy.early_decrypt_fraction"] == pytest.approx(1 / 3)


def test_early_decrypt_fraction_is_against_the_batch_close_over_batched_orders() -> None:
    run = [
        _record(0, 1, batch=0, seen=1.0, read=5.0, executed=35.0),  # read before batch 0 closed
        _record(1, 0, batch=0, seen=1.0, read=31.0, executed=35.0),  # after it closed at 30
        _record(2, 1, seen=1.0, read=2.0, executed=35.0),  # never sealed in a batch
    ]
    assert _leakage(run)["privacy.early_decrypt_fraction"] == pytest.approx(1 / 2)


def test_an_order_read_but_never_executed_counts_as_read_early() -> None:
    run = [
        _record(0, 1, seen=1.0, read=5.0, executed=10.0),
        _record(1, 0, seen=50.0, read=50.0),  # read by the operator, still queued at the end
    ]
    metrics = _leakage(run, mode="operator")
    assert metrics["privacy.early_decrypt_fraction"] == pytest.approx(1.0)
