"""Transfers and consults of a live call: an agent hands the caller to a colleague, a skill queue or
an outside number, blind or after consulting them (see conversation.py for how, docs/transfers.md
for why the service, not SIP REFER, moves the legs)."""
