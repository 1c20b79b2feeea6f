"""The simpy clock of a run, counting the events it processes."""

from __future__ import annotations

from simpy import Environment


class CountingEnvironment(Environment):
    """A simpy environment that counts the events it processes (``perf.events``).

    simpy keeps no public count, and reading its private event-id counter both relied on a
    private attribute and advanced it (so a second reading came out one higher).
    """

    def __init__(self) -> None:
        super().__init__()
        self.processed = 0
        """Events processed so far, not counting the stop event ``run(until=...)`` adds."""

    def step(self) -> None:
        """Process the next event and count it (the stop event raises before it is counted)."""
        super().step()
        self.processed += 1
