"""What each metric means, in one line (from SPEC section 4), and the question it answers.

The Privacy page groups its small multiples by question (what leaked; who lost money; what it
cost) and prints these lines under each chart, so a reader does not need the SPEC open.
"""

from __future__ import annotations

QUESTIONS: dict[str, tuple[str, ...]] = {
    "What leaked": ("privacy.",),
    "Who lost money": ("mev.", "traders.", "market.maker_loss"),
    "What it cost": ("cost.",),
}

MEANING: dict[str, str] = {
    "privacy.direction_inference_acc": (
        "how often the adversary names an order's outcome from what it saw before it executed"
    ),
    "privacy.direction_inference_advantage": (
        "that accuracy minus the share of the most common outcome (0: no better than guessing)"
    ),
    "privacy.exposure_s": (
        "mean seconds between an order's first plaintext sighting by another node and its execution"
    ),
    "privacy.early_decrypt_fraction": (
        "share of encrypted orders the adversary could read before their batch closed"
    ),
    "privacy.anonymity_set": (
        "mean number of orders in the batch or block an order cleared in (higher hides more)"
    ),
    "privacy.sender_precision": (
        "the spies' first-spy estimator: precision of naming an order's origin node, "
        "averaged over every honest sender (Fanti et al. 2018)"
    ),
    "privacy.sender_recall": (
        "the spies' first-spy estimator: recall of naming an order's origin node, "
        "averaged over every honest sender (Fanti et al. 2018)"
    ),
    "privacy.sender_precision_first_stem_spy": (
        "Dandelion: precision of naming the node the first spy heard an order from on a stem"
    ),
    "privacy.sender_recall_first_stem_spy": (
        "Dandelion: recall of naming the node the first spy heard an order from on a stem"
    ),
    "privacy.failed_batch_fraction": "threshold epochs that could not get enough valid shares",
    "privacy.cheating_shares_detected": "invalid keyper shares caught and attributed by proofs",
    "privacy.propagation_delay_s": (
        "mean seconds from an order's submission until it reaches the sequencer"
    ),
    "privacy.signal_mi_bits": (
        "mutual information between informed traders' signals and the adversary's view "
        "(Miller–Madow)"
    ),
    "mev.extracted": "the front-runner's realised profit over its sandwiches",
    "mev.victim_loss": "what victims paid above the same fills without the attack",
    "mev.sandwiches": "completed sandwiches",
    "mev.failed_attempts": "front legs that ran after their victim or got no back leg",
    "mev.copycat_pnl": "the copycat's profit from resending informed traders' sealed orders",
    "mev.copied_orders": "sealed orders the copycat resent under its own address",
    "adversary.orders_executed": "the adversary's own executed orders (left out of users' metrics)",
    "adversary.volume": "the money the adversary's own orders moved",
    "traders.informed_pnl": "mean profit per informed trader",
    "traders.noise_pnl": "mean profit per noise trader",
    "traders.forecaster_pnl": "mean profit per forecaster-driven trader",
    "market.maker_loss": "market makers' loss after settlement",
    "market.full_info_error": (
        "mean gap between last prices and the posterior given every trader's evidence"
    ),
    "market.aggregation_efficiency": (
        "share of the way from the prior to the full-information posterior the prices covered"
    ),
    "market.price_convergence_s": "seconds until the price stays within 0.05 of its final value",
    "cost.order_latency_s": "mean seconds from an order's submission to its execution",
    "cost.messages_per_order": "network messages spent per executed order",
    "cost.crypto_ops": "cryptographic operations performed (a deterministic count of compute)",
}

# Metrics where a larger value is the better one (the frontier's Pareto line turns for them).
HIGHER_IS_BETTER = frozenset(
    {
        "privacy.anonymity_set",
        "traders.informed_pnl",
        "traders.noise_pnl",
        "market.aggregation_efficiency",
    }
)


def question_of(metric: str) -> str | None:
    """The question a metric answers, or None when it answers none of them."""
    for question, prefixes in QUESTIONS.items():
        if metric.startswith(prefixes):
            return question
    return None


def meaning(metric: str) -> str:
    """The one-line meaning of a metric (empty when the SPEC line is not listed here)."""
    return MEANING.get(metric, "")
