"""The exchange at time 0, before any component adds its genesis: makers funded, traders paid."""

from __future__ import annotations

from market.accounts import maker_account
from market.exchange import Exchange, maker_funding
from market.ledger import Ledger
from market.lmsr import make_market_maker
from market.types import to_micro
from sim.scenario import Scenario
from sim.world.build import World


def opening_exchange(scenario: Scenario, world: World) -> Exchange:
    """The exchange at time 0: makers funded, traders holding their budgets."""
    cfg = scenario.market
    makers = [
        make_market_maker(
            mechanism=cfg.mechanism,
            outcomes=cfg.outcomes,
            liquidity_b=cfg.liquidity_b,
            alpha=cfg.alpha,
        )
        for _ in range(cfg.count)
    ]
    ledger = Ledger()
    for spec in world.traders:
        ledger.mint(spec.trader, to_micro(scenario.traders.budget))
    for market, maker in enumerate(makers):
        ledger.mint(maker_account(market), maker_funding(maker))
    return Exchange(makers, ledger, fee_per_share=to_micro(cfg.fee))
