"""The console's navigation: which sections each role sees. Feature issues add their pages here."""

from __future__ import annotations

from dataclasses import dataclass

from core.auth.models import Role

R = Role


@dataclass(frozen=True)
class Section:
    path: str
    title: str
    roles: frozenset[Role]
    summary: str


SECTIONS: tuple[Section, ...] = (
    Section("/console", "Home", frozenset(Role), "Your overview"),
    Section("/console/my-day", "My day", frozenset({R.agent}), "Hours, calls and QA feedback"),
    Section(
        "/console/campaigns", "Campaigns", frozenset({R.manager, R.supervisor}), "Lists, windows, results"
    ),
    Section("/console/wallboard", "Wallboard", frozenset({R.supervisor}), "Agents and campaigns live"),
    Section(
        "/console/agents",
        "Agents",
        frozenset({R.supervisor}),
        "Agents' skills, lines, languages and daily hours",
    ),
    Section(
        "/console/alerts",
        "Welfare alerts",
        frozenset({R.supervisor, R.manager}),
        "Elders not reached or asking for help",
    ),
    Section(
        "/console/cases",
        "Cases",
        frozenset({R.supervisor}),
        "Hotline cases handed to departments, until closed",
    ),
    Section("/console/reviews", "Reviews", frozenset({R.qa}), "Recording samples and scorecards"),
    Section("/console/my-reviews", "My reviews", frozenset({R.agent}), "QA reviews of your calls"),
    Section("/console/users", "Users", frozenset(), "Accounts, roles and SIP endpoints"),
    Section("/console/system", "System", frozenset(), "Health of database, bus and Asterisk"),
)


def sections_for(role: Role) -> list[Section]:
    # Admins see everything; others see what names their role.
    return [s for s in SECTIONS if role is Role.admin or role in s.roles]


def section_at(path: str) -> Section:
    return next(s for s in SECTIONS if s.path == path)
