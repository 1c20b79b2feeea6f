"""The forecaster trader: trades each live market toward the federated model's probability.

Once federated training has finished, the forecaster holds one probability per market (the
trained model applied to the market's features). From then on, every mean inter-order time of
the other traders (``3600 / traders.orders_per_hour`` seconds) until the markets close, it
looks at each live market and trades as an informed trader whose belief is the model's
probability (:func:`sim.world.agents.informed_intent`): it buys the outcome whose probability most
exceeds its price by at least :data:`sim.world.agents.MIN_EDGE`, ``traders.order_size`` shares at
most, paying at most its belief per share and never more than its cash. So its trades move the
prices toward the model's and stop when they agree.

Its orders go through the run's order flow like any trader's (:meth:`OrderFlow.submit`), from
the coordinator's node, under its own ledger account (minted at genesis with the traders'
budget); its profit is measured like theirs (:func:`sim.results.metrics.account_value`).
"""

from __future__ import annotations

from collections.abc import Sequence

from market.types import MICRO, Order
from sim.host.host import Host
from sim.results.metrics import account_value
from sim.results.records import OrderRecord
from sim.scenario import Traders
from sim.world.agents import Intent, informed_intent

KIND = "forecaster"
"""The ``kind`` of the forecaster's orders in the ``orders`` table."""


def forecast_intent(
    prices: Sequence[float], probability: float, *, shares: float, cash: float
) -> Intent | None:
    """The order toward ``probability`` (of outcome 1) in a binary market, if worth placing."""
    return informed_intent(prices, (1.0 - probability, probability), shares=shares, cash=cash)


class ForecastTrader:
    """Trades the live markets toward the model's probabilities (see the module doc).

    Args:
        sim: the run.
        account: its ledger account (minted by the caller before the run starts).
        node: the node it submits from.
        traders: ``[traders]`` (it trades as often, as much and from the same budget as one).
        close_s: when trading stops (``market.close_s``).
    """

    def __init__(
        self, sim: Host, *, account: int, node: int, traders: Traders, close_s: float
    ) -> None:
        self.sim = sim
        self.account = account
        self.node = node
        self.traders, self.close_s = traders, close_s
        self.interval = 3600.0 / traders.orders_per_hour
        self.beliefs: tuple[float, ...] = ()
        self.records: list[OrderRecord] = []

    def start(self, beliefs: Sequence[float]) -> None:
        """Adopt the model's probabilities (one per market) and trade from now on."""
        self.beliefs = tuple(float(p) for p in beliefs)
        self._act()

    def _act(self) -> None:
        if self.sim.now >= self.close_s:
            return
        for market, probability in enumerate(self.beliefs):
            if market not in self.sim.exchange.closed:
                self._trade(market, probability)
        self.sim.after(self.interval, self._act)

    def _trade(self, market: int, probability: float) -> None:
        sim = self.sim
        cash = sim.exchange.ledger.cash(self.account) / MICRO
        intent = forecast_intent(
            sim.exchange.prices(market),
            probability,
            shares=self.traders.order_size,
            cash=cash,
        )
        if intent is None or round(intent.shares * MICRO) <= 0:
            return
        order_id = len(sim.records.orders)
        order = Order(
            self.account,
            order_id,
            market,
            intent.outcome,
            round(intent.shares * MICRO),
            round(intent.limit * MICRO),
        )
        self.records.append(sim.submit(order, node=self.node, kind=KIND))

    def pnl(self) -> float:
        """Final value (cash plus positions at current prices) minus the starting budget."""
        return account_value(self.sim.exchange, self.account) - self.traders.budget
