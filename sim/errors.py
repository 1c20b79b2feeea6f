"""The error tree of the sim package.

::

    SimError
    ├── ScenarioError        bad input: unreadable or invalid scenario, bad --set (exit code 2)
    └── TopologyError        the network section cannot produce a connected graph (exit code 2)

The CLI turns every ``InputError`` into exit code 2 with one line per problem and no traceback;
anything else is an internal error (exit code 1).
"""

from __future__ import annotations


class SimError(Exception):
    """Base of every error the sim package raises on purpose."""


class InputError(SimError):
    """The user's input is wrong; ``lines()`` gives one message per problem."""

    def lines(self) -> list[str]:
        """One line per problem, each naming the file and the dotted key."""
        return [str(self)]


class TopologyError(InputError):
    """The requested topology cannot be drawn connected."""
