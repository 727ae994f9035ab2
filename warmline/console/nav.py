"""The console's navigation: which sections each role sees. Feature issues add their pages here.

Titles and summaries are English msgids (`N_`), shown through the catalogue: `_(section.title)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.auth.models import Role
from core.i18n import N_

R = Role


@dataclass(frozen=True)
class Section:
    path: str
    title: str
    roles: frozenset[Role]
    summary: str


SECTIONS: tuple[Section, ...] = (
    Section("/console", N_("Home"), frozenset(Role), N_("Your overview")),
    Section("/console/my-day", N_("My day"), frozenset({R.agent}), N_("Hours, calls and QA feedback")),
    Section(
        "/console/shifts",
        N_("Shifts"),
        frozenset({R.agent, R.supervisor, R.manager}),
        N_("Pick hours to work; the gaps against the forecast; publish the week"),
    ),
    Section(
        "/console/campaigns",
        N_("Campaigns"),
        frozenset({R.manager, R.supervisor}),
        N_("Lists, windows, results"),
    ),
    Section(
        "/console/wallboard", N_("Wallboard"), frozenset({R.supervisor}), N_("Agents and campaigns live")
    ),
    Section(
        "/console/agents",
        N_("Agents"),
        frozenset({R.supervisor}),
        N_("Agents' skills, lines, languages and daily hours"),
    ),
    Section(
        "/console/alerts",
        N_("Welfare alerts"),
        frozenset({R.supervisor, R.manager}),
        N_("Elders not reached or asking for help"),
    ),
    Section(
        "/console/cases",
        N_("Cases"),
        frozenset({R.supervisor}),
        N_("Hotline cases handed to departments, until closed"),
    ),
    Section(
        "/console/reports",
        N_("Reports"),
        frozenset({R.supervisor, R.manager}),
        N_("Service level, answer time, abandon, resolution, satisfaction and hours"),
    ),
    Section("/console/reviews", N_("Reviews"), frozenset({R.qa}), N_("Recording samples and scorecards")),
    Section("/console/my-reviews", N_("My reviews"), frozenset({R.agent}), N_("QA reviews of your calls")),
    Section("/console/users", N_("Users"), frozenset(), N_("Accounts, roles and SIP endpoints")),
    Section("/console/system", N_("System"), frozenset(), N_("Health of database, bus and Asterisk")),
    Section("/console/settings", N_("My settings"), frozenset(Role), N_("The language you read and hear")),
)


def sections_for(role: Role) -> list[Section]:
    # Admins see everything; others see what names their role.
    return [s for s in SECTIONS if role is Role.admin or role in s.roles]


def section_at(path: str) -> Section:
    return next(s for s in SECTIONS if s.path == path)
