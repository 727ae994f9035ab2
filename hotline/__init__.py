"""The inbound hotline: numbers and opening hours, the menu, queueing callers for agents through
the agent hand-over, after-hours flows and callback requests."""
