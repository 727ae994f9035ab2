"""What the phone's actions raise when they cannot be done now."""

from __future__ import annotations


class ActionError(ValueError):
    """An action that cannot be done now; the message is said to the agent as it is."""
