"""Agents placing calls, never seeing the number: preview contacts, personal callbacks, typed numbers.

- `service` -- the database side: the next preview contact reserved to the agent, a skip with its
  reason, the agent's callbacks and recent calls, and a dial request checked (eligibility,
  do-not-call, calling window, caps) and written as an attempt before anything is dialled;
- `api` -- ``/api/agents/me/preview``, ``/preview/skip``, ``/callbacks``, ``/dial``, ``/calls``;
- `runner` -- the dialer worker's part: it takes the requested attempts and places them, agent leg
  first (agents.placed_calls), then closes them like any dialer call.
"""
