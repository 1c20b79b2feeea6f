"""The composition root: the one place that reads the scenario to build a run's components.

Every component gets its own ``[section]``, the slice of the world it acts on, and the host;
none of them sees the :class:`~sim.scenario.Scenario`. What a component adds before the chain
starts it declares in its ``genesis()``, so the order below matters only where it is a rule of
the chain: the order flow first (it carries every order), and the Byzantine reporters right
after their protocol, so that the certificates they offer follow the protocol's in each block.
"""

from __future__ import annotations

from market.accounts import copycat_account, forecaster_account, frontrunner_account
from sim.adversary.byzantine import ByzantineReporters
from sim.adversary.copycat import Copycat
from sim.adversary.frontrunner import FrontRunner
from sim.adversary.leakage import Leakage
from sim.adversary.spies import Spies
from sim.federated.process import FederatedForecaster
from sim.host.component import Component, OrderFlow
from sim.host.faults import FaultInjector, plan_faults
from sim.host.host import Host
from sim.orderflow.commit_reveal import CommitReveal
from sim.orderflow.operator import Operator
from sim.orderflow.threshold import Threshold
from sim.orderflow.transparent import Transparent
from sim.scenario import Scenario
from sim.settlement import PROTOCOLS
from sim.world.build import World


def has_frontrunner(scenario: Scenario) -> bool:
    """A front-runner trades in the run: an external one, or the operator itself."""
    adversary = scenario.adversary
    operator = scenario.privacy.order_flow == "operator" and adversary.operator_frontruns
    return adversary.frontrunner or operator


def frontrunner_node(scenario: Scenario, world: World) -> int:
    """Where the front-runner trades from: the operator's node when the operator front-runs."""
    operator = scenario.privacy.order_flow == "operator" and scenario.adversary.operator_frontruns
    return world.operator if operator else world.adversary_node


def watchers(scenario: Scenario, world: World) -> frozenset[int]:
    """The adversary's nodes: its spies, and where its front-runner and copycat trade from."""
    nodes = set(world.spies)
    if scenario.adversary.frontrunner or scenario.adversary.copycat:
        nodes.add(world.adversary_node)
    if has_frontrunner(scenario):
        nodes.add(frontrunner_node(scenario, world))
    return frozenset(nodes)


def order_flow(host: Host, scenario: Scenario, world: World) -> OrderFlow:
    """The component of ``privacy.order_flow``."""
    privacy, seen_by = scenario.privacy, watchers(scenario, world)
    match privacy.order_flow:
        case "transparent":
            return Transparent(host, privacy=privacy, watchers=seen_by)
        case "commit_reveal":
            return CommitReveal(host, privacy=privacy, watchers=seen_by)
        case "operator":
            return Operator(host, privacy=privacy, watchers=seen_by, operator=world.operator)
        case "threshold":
            return Threshold(
                host,
                privacy=privacy,
                watchers=seen_by,
                keypers=world.keypers,
                colluding_keypers=scenario.adversary.colluding_keypers,
                cheating_keypers=scenario.adversary.cheating_keypers,
                reader=world.adversary_node,
            )
    raise AssertionError(privacy.order_flow)


def components(host: Host, scenario: Scenario, world: World) -> list[Component]:
    """Every component of one run, in the order the host plugs them."""
    flow = order_flow(host, scenario, world)
    built: list[Component] = [flow]
    if has_frontrunner(scenario):
        account = frontrunner_account(len(world.traders))
        built.append(
            FrontRunner(
                host,
                flow,
                node=frontrunner_node(scenario, world),
                account=account,
                priority_fee=scenario.adversary.priority_fee,
                budget=scenario.traders.budget,
                speculative_shares=scenario.traders.order_size,
            )
        )
    if scenario.adversary.copycat and isinstance(flow, Threshold):
        built.append(
            Copycat(
                host,
                flow,
                node=world.adversary_node,
                account=copycat_account(len(world.traders)),
                budget=scenario.traders.budget,
                spies=world.spies,
            )
        )
    built.append(
        Leakage(
            host,
            outcomes=scenario.market.outcomes,
            privacy=scenario.privacy,
            horizon_s=scenario.duration_s,
        )
    )
    built.append(Spies(host, stems=scenario.network.propagation == "dandelion"))
    plan = plan_faults(scenario, sorted(host.validators), host.streams.numpy("faults"))
    built.append(FaultInjector(host, plan, horizon_s=scenario.duration_s))
    protocol = PROTOCOLS[scenario.settlement.protocol](
        host, plan, market=scenario.market, settlement=scenario.settlement
    )
    built.append(protocol)
    if scenario.settlement.byzantine_fraction > 0:
        built.append(ByzantineReporters(host, protocol, scenario.settlement.byzantine_strategy))
    if scenario.forecaster.enabled:
        built.append(
            FederatedForecaster(
                host,
                forecaster=scenario.forecaster,
                traders=scenario.traders,
                close_s=scenario.market.close_s,
                account=forecaster_account(len(world.traders)),
            )
        )
    return built
