"""The run's clock counts the events it processes, and only those."""

from __future__ import annotations

from sim.net.clock import CountingEnvironment


def test_counts_each_processed_event_once_and_not_the_stop_event() -> None:
    env = CountingEnvironment()
    fired: list[float] = []
    for t in (1.0, 2.0, 2.0, 3.0, 20.0):
        env.timeout(t).callbacks.append(lambda event: fired.append(event.env.now))
    env.run(until=10.0)
    # by hand: the timeouts at 1, 2, 2 and 3 ran; the one at 20 did not; the stop event at 10
    # that run(until=...) adds is simpy's, not the simulation's
    assert fired == [1.0, 2.0, 2.0, 3.0]
    assert env.processed == 4


def test_a_process_counts_its_start_its_timeouts_and_its_end() -> None:
    env = CountingEnvironment()

    def proc():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield env.timeout(1.0)

    env.process(proc())
    env.run()
    # simpy: an Initialize event starts the process, three timeouts, then the process event
    assert env.processed == 1 + 3 + 1
