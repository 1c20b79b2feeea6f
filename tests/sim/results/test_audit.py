"""The payout audit on hand-made records: each rule, computed by hand, and the error it reports."""

from __future__ import annotations

from market.accounts import BOND_ESCROW, ESCROW, TREASURY, maker_account, reporter_account
from market.types import Order
from sim.results.audit import BondRecord, PayoutRecords, payout_error, recomputed_balances
from sim.results.records import OrderRecord

MAKER0 = maker_account(0)


def _executed(trader: int, outcome: int, shares: int, paid: int, *, fee: int = 0) -> OrderRecord:
    order = Order(trader, trader * 100 + shares, 0, outcome, shares, 900_000, fee)
    record = OrderRecord(0, order, "informed", node=0, t_submit=0.0, wire_bytes=32)
    record.status, record.filled, record.paid = "executed", shares, paid
    return record


def test_trades_and_a_payout_move_money_between_traders_and_the_maker() -> None:
    opening = {1: 1000, 2: 1000, MAKER0: 500}
    orders = [_executed(1, 0, 300, 200, fee=5), _executed(2, 1, 100, 70)]
    balances = recomputed_balances(opening, orders, PayoutRecords({0: 0}))
    # trader 1 paid 200 and a priority fee of 5, then was paid 300 for its winning shares
    assert balances[1] == 1000 - 200 - 5 + 300 and balances[TREASURY] == 5
    assert balances[2] == 1000 - 70  # it held the losing outcome
    assert balances[MAKER0] == 500 + 200 + 70 - 300
    assert sum(balances.values()) == sum(opening.values())


def test_a_batch_order_pays_no_priority_fee_and_an_unsettled_market_pays_nothing() -> None:
    record = _executed(1, 0, 300, 200, fee=5)
    record.batch_id = 4
    balances = recomputed_balances({1: 1000}, [record], PayoutRecords({}))
    assert balances[1] == 800 and balances.get(TREASURY, 0) == 0


def test_deposits_go_back_stay_in_escrow_or_go_to_the_treasury() -> None:
    states = ("refunded", "escrowed", "forfeited")
    orders = []
    for trader, state in enumerate(states):
        record = OrderRecord(trader, Order(trader, 0, 0, 0, 1, 1), "noise", 0, 0.0, 32)
        record.deposit, record.deposit_state = 7, state  # type: ignore[assignment]
        orders.append(record)
    balances = recomputed_balances(dict.fromkeys(range(3), 10), orders, PayoutRecords({}))
    assert [balances[t] for t in range(3)] == [10, 3, 3]
    assert balances[ESCROW] == 7 and balances[TREASURY] == 7


def test_bonds_are_released_by_the_oracle_rule_once_the_market_is_final() -> None:
    p, d = reporter_account(3), reporter_account(4)
    opening = {p: 1000, d: 1000}
    bonds = (BondRecord(0, 3, 1, 101, disputer=4), BondRecord(1, 3, 0, 50))
    final = recomputed_balances(opening, [], PayoutRecords({0: 0, 1: 0}, bonds))
    # market 0: the disputer was right, gets its bond back and half (rounded down) of the loser's
    assert final[d] == 1000 + 50 and final[p] == 1000 - 101 and final[TREASURY] == 51
    assert final[BOND_ESCROW] == 0  # market 1: the undisputed bond went back
    pending = recomputed_balances(opening, [], PayoutRecords({}, bonds))
    assert pending[BOND_ESCROW] == 101 * 2 + 50 and pending[p] == 1000 - 151


def test_the_error_sums_every_account_gap_in_micro_units() -> None:
    assert payout_error({1: 10, 2: 5}, {1: 10, 2: 5, 3: 0}) == 0
    # a double payout to 1 paid out of 2, and a payout to the wrong account 3 instead of 2
    assert payout_error({1: 10, 2: 5}, {1: 20, 2: -5}) == 20
    assert payout_error({1: 10, 2: 5}, {1: 10, 3: 5}) == 10


def test_a_slashed_reporter_loses_its_whole_account_to_the_treasury() -> None:
    seven, nine = reporter_account(7), reporter_account(9)
    opening = {seven: 2_000, nine: 2_000, TREASURY: 10}
    balances = recomputed_balances(opening, [], PayoutRecords({}, slashed=(7,)))
    assert balances[seven] == 0 and balances[nine] == 2_000  # only the equivocator
    assert balances[TREASURY] == 10 + 2_000
    # a ledger that slashed to the wrong account, or not at all, shows in the error
    assert payout_error(balances, {**balances, TREASURY: 10, MAKER0: 2_000}) == 4_000
    assert payout_error(balances, opening) == 4_000
