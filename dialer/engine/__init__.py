"""The dialer engine: claims due contacts, places calls through ARI, and writes what happened.

- `ledger` — the database side: claim contacts atomically, write the attempt before the
  originate, and close an attempt together with its contact (retry or finish) in one transaction;
- `calls` — one call from originate to hang-up: AMD verdict, IVR flow or agent, the facts;
- `runtime` — the worker: one event stream per Asterisk node, pacing, the loop over campaigns.

Crash safety (matching attempts with Asterisk's channels) is `dialer.reconcile`; the live figures
are `dialer.stats`.
"""
