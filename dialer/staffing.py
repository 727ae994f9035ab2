"""Before a campaign dials: can anyone take the calls it puts through to agents?

A campaign needs agents where its IVR flow transfers (each ``transfer`` node's skill and
language) or, for an agent campaign without a flow (a preview campaign has none), for every call,
with the campaign's own ``skill`` and ``language``. When no enabled agent has what a transfer
asks for, the people who press 0 would wait in the queue until they are abandoned; starting the
campaign (``warmline campaign start|resume``, ``POST /api/campaigns/{name}/status``, the console)
says so instead, naming the skill.

The start still happens: the IVR part of a campaign (the notice, the confirmations, the opt-outs)
works without agents, and agents are often given the skill, or log in, after the campaign starts.
The warning is also kept in the audit log (``campaign.unstaffed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from agents.routing import ANY_SKILL, Need, unmet
from core.audit import audit
from core.i18n import N_, _
from core.settings import Settings
from dialer.models import Campaign, CampaignKind
from ivr.check import find_flow, flow_dirs, load_flow
from ivr.flow import TransferNode

HINT = N_("an agent's profile is set with `warmline agents set NAME` or on the console's Agents page")


@dataclass
class Staffing:
    """What a campaign asks of agents, and what nobody can give it."""

    needs: list[Need] = field(default_factory=list)
    missing_skills: list[str] = field(default_factory=list)  # skills no enabled agent has at all
    warnings: list[str] = field(default_factory=list)


def campaign_needs(settings: Settings, campaign: Campaign) -> tuple[list[Need], list[str]]:
    """The needs of the campaign's agent calls, and the problems met reading its flow."""
    if not campaign.flow:
        agents = Need(campaign.skill, (), campaign.language, campaign.min_level)
        return ([agents] if campaign.kind is CampaignKind.agent else []), []
    path = find_flow(settings.var_dir, campaign.flow)
    if path is None:
        where = ", ".join(map(str, flow_dirs(settings.var_dir)))
        return [], [
            _(
                "campaign '{name}': its flow '{flow}' is not in {where}",
                name=campaign.name,
                flow=campaign.flow,
                where=where,
            )
        ]
    try:
        flow = load_flow(path)
    except Exception as exc:
        return [], [
            _(
                "campaign '{name}': its flow {path} cannot be read: {error}",
                name=campaign.name,
                path=path,
                error=exc,
            )
        ]
    needs = [
        Need(None if node.skill == ANY_SKILL else node.skill, (), node.language, campaign.min_level)
        for node in flow.nodes.values()
        if isinstance(node, TransferNode)
    ]
    return list(dict.fromkeys(needs)), []


def check_staffing(session: Session, settings: Settings, campaign: Campaign) -> Staffing:
    needs, problems = campaign_needs(settings, campaign)
    gaps = unmet(session, needs)
    warnings = [
        _(
            "campaign '{name}' puts calls through to {need}, but {reason}: those callers would wait until"
            " the queue gives up on them ({hint})",
            name=campaign.name,
            need=str(g.need),
            reason=g.reason,
            hint=_(HINT),
        )
        for g in gaps
    ]
    missing = list(dict.fromkeys(g.need.skill for g in gaps if g.need.skill and g.missing == "skill"))
    return Staffing(needs=needs, missing_skills=missing, warnings=problems + warnings)


def report_staffing(session: Session, settings: Settings, campaign: Campaign, *, actor: str) -> Staffing:
    """check_staffing, with a warning kept in the audit log in the caller's transaction."""
    staffing = check_staffing(session, settings, campaign)
    if staffing.warnings:
        audit(
            session,
            actor,
            "campaign.unstaffed",
            campaign.name,
            missing_skills=staffing.missing_skills,
            warnings=staffing.warnings,
        )
    return staffing
