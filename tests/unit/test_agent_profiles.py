"""Agents' profiles administered: `warmline agents list|show|set`, the profile API and the console
form without JavaScript -- checked input, clear errors, roles, and every change audited -- on
SQLite and PostgreSQL. Written against the English messages (the console page also in zh-CN)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents import profiles
from agents.models import AgentProfile
from agents.profiles import ProfileError
from agents.service import ensure_sip_account
from core.audit import AuditEntry
from core.auth import service
from core.auth.models import Role, User
from core.db import Database
from core.i18n import use_locale
from core.settings import Settings
from tests.utils import PASSWORD, login
from tests.utils import console_login as sign_in_to_console
from tests.utils.cli import CliRunner, ok
from warmline.app import create_app
from warmline.cli import app

pytestmark = pytest.mark.usefixtures("english")


def people(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "root", Role.admin, PASSWORD, actor="test")
        service.create_user(s, "boss", Role.supervisor, PASSWORD, actor="test")
        service.create_user(s, "maria", Role.manager, PASSWORD, actor="test")
        for name, display in (("mei", "王梅"), ("lin", None)):
            user = service.create_user(s, name, Role.agent, PASSWORD, actor="test", display_name=display)
            ensure_sip_account(s, user, actor="test")


def audits(db: Database, action: str = "agent_profile.update") -> list[AuditEntry]:
    with db.session() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))
        s.expunge_all()
        return rows


# ------------------------------------------------------------------------------ checking input


def test_lists_and_tags_are_read_the_way_people_type_them() -> None:
    assert profiles.split_list(" welfare, vaccination，疫苗、 ") == ["welfare", "vaccination", "疫苗"]
    assert profiles.split_list("") == []
    assert profiles.clean_skills(["welfare", "welfare", "关怀"]) == ["welfare", "关怀"]
    assert profiles.clean_languages(["ZH-cn", "yue", "zh-hant-hk", "en", "EN"]) == [
        "zh-CN",
        "yue",
        "zh-Hant-HK",
        "en",
    ]
    assert profiles.parse_hours("3.5") == 3.5 and profiles.parse_hours("4h") == 4
    assert profiles.hours_to_minutes(3.5) == 210 and profiles.hours_to_minutes(24) == 1440


@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        (lambda: profiles.clean_skills(["any"]), "skills", "'any' is not a skill"),
        (lambda: profiles.clean_skills(["two words"]), "skills", "no spaces or commas"),
        (lambda: profiles.clean_lines(["x" * 65]), "lines", "1 to 64 characters"),
        (lambda: profiles.clean_languages(["Mandarin Chinese"]), "languages", "not a language tag"),
        (lambda: profiles.clean_languages(["zh_CN"]), "languages", "not a language tag"),
        (lambda: profiles.parse_hours("four"), "daily_hours", "not a number of hours"),
        (lambda: profiles.hours_to_minutes(0), "daily_hours", "out of range"),
        (lambda: profiles.hours_to_minutes(24.5), "daily_hours", "out of range"),
        (lambda: profiles.hours_to_minutes(float("nan")), "daily_hours", "out of range"),
        (lambda: profiles.hours_to_minutes(0.001), "daily_hours", "less than a minute"),
        (lambda: profiles.clean_skills([f"s{i}" for i in range(33)]), "skills", "at most 32"),
    ],
)
def test_bad_input_names_the_field_and_the_problem(call: Any, field: str, words: str) -> None:
    with pytest.raises(ProfileError) as caught:
        call()
    assert caught.value.field == field and words in str(caught.value)


# ------------------------------------------------------------------------------ the service


def test_update_sets_only_what_is_given_and_audits_each_change(db: Database) -> None:
    people(db)
    with db.session() as s:
        shown = profiles.get_profile(s, "mei")
        assert (shown.skills, shown.lines, shown.languages, shown.daily_target_minutes) == ([], [], [], 240)
        assert shown.display_name == "王梅" and shown.endpoint is not None and shown.endpoint.startswith("ag")
    with db.session() as s:
        profile, changed = profiles.update_profile(
            s, "mei", actor="boss", skills=["welfare"], languages=["zh-cn", "yue"], daily_hours=3.5
        )
    assert changed == ["skills", "languages", "daily_target_minutes"]
    assert (profile.languages, profile.daily_hours, profile.lines) == (["zh-CN", "yue"], 3.5, [])
    with db.session() as s:
        _, changed = profiles.update_profile(s, "mei", actor="boss", lines=["12345"], skills=["welfare"])
    assert changed == ["lines"], "an unchanged field is not a change"
    with db.session() as s:
        _, changed = profiles.update_profile(s, "mei", actor="boss", skills=["welfare"])
    assert changed == []
    [first, second] = audits(db)
    assert (first.actor, first.target) == ("boss", "mei")
    assert first.detail["changes"] == {
        "skills": {"before": [], "after": ["welfare"]},
        "languages": {"before": [], "after": ["zh-CN", "yue"]},
        "daily_target_minutes": {"before": 240, "after": 210},
    }
    assert second.detail["changes"] == {"lines": {"before": [], "after": ["12345"]}}
    with db.session() as s:
        row = s.scalar(select(AgentProfile).join(User).where(User.name == "mei"))
        assert row is not None and (row.skills, row.lines, row.languages) == (
            ["welfare"],
            ["12345"],
            ["zh-CN", "yue"],
        )


def test_a_bad_field_changes_nothing(db: Database) -> None:
    people(db)
    with db.session() as s:
        profiles.update_profile(s, "mei", actor="boss", skills=["welfare"])
    with db.session() as s, pytest.raises(ProfileError, match="languages"):
        profiles.update_profile(s, "mei", actor="boss", skills=["vaccination"], languages=["?"])
    with db.session() as s:
        assert profiles.get_profile(s, "mei").skills == ["welfare"]
    assert len(audits(db)) == 1


def test_only_agents_have_profiles(db: Database) -> None:
    people(db)
    with db.session() as s:
        with pytest.raises(profiles.NotAnAgent, match="'boss' is a supervisor, not an agent"):
            profiles.update_profile(s, "boss", actor="root", skills=["x"])
        with pytest.raises(profiles.AgentNotFound, match="no user named 'ghost'"):
            profiles.get_profile(s, "ghost")
        assert [p.name for p in profiles.list_profiles(s)] == ["lin", "mei"]


# ------------------------------------------------------------------------------ the CLI


@pytest.fixture
def cli(cli: CliRunner, db: Database) -> CliRunner:
    people(db)
    return cli


def test_cli_set_show_list(cli: CliRunner, db: Database) -> None:
    out = json.loads(
        ok(
            cli, "agents", "set", "mei", "--skills", "welfare,vaccination", "--daily-hours", "4.5",
            "--lines", "community-hotline,12345", "--languages", "zh-CN,yue", "--json",
        ).stdout
    )  # fmt: skip
    assert out["skills"] == ["welfare", "vaccination"] and out["lines"] == ["community-hotline", "12345"]
    assert (out["languages"], out["daily_target_minutes"], out["daily_hours"]) == (["zh-CN", "yue"], 270, 4.5)
    assert out["changed"] == ["skills", "lines", "languages", "daily_target_minutes"]
    shown = json.loads(ok(cli, "agents", "show", "mei", "--json").stdout)
    assert shown == {k: v for k, v in out.items() if k != "changed"}
    text = ok(cli, "agents", "show", "mei").stdout
    assert "mei (王梅): skills welfare, vaccination; lines community-hotline, 12345" in text
    assert "languages zh-CN, yue; 4 h 30 min a day" in text
    cleared = ok(cli, "agents", "set", "mei", "--lines", "").stdout
    assert "lines all" in cleared and "(changed: lines)" in cleared
    assert "(nothing changed)" in ok(cli, "agents", "set", "mei", "--lines", "").stdout
    listed = json.loads(ok(cli, "agents", "list", "--json").stdout)
    assert [(a["name"], a["skills"]) for a in listed] == [("lin", []), ("mei", ["welfare", "vaccination"])]
    table = ok(cli, "agents", "list").stdout.splitlines()
    assert table[0].split() == ["agent", "skills", "lines", "languages", "level", "daily"]
    assert table[2].split()[:3] == ["mei", "welfare,vaccination", "all"]
    assert [(a.actor, a.target) for a in audits(db)] == [("cli", "mei"), ("cli", "mei")]


def test_the_manual_dial_permission_is_given_and_taken_back(cli: CliRunner, db: Database) -> None:
    given = json.loads(ok(cli, "agents", "set", "mei", "--manual-dial", "--json").stdout)
    assert (given["manual_dial"], given["changed"]) == (True, ["manual_dial"])
    with use_locale("en"):
        assert "may dial typed numbers" in ok(cli, "agents", "show", "mei").stdout
    taken = json.loads(ok(cli, "agents", "set", "mei", "--no-manual-dial", "--json").stdout)
    assert (taken["manual_dial"], taken["changed"]) == (False, ["manual_dial"])
    [first, second] = audits(db)
    assert first.detail["changes"] == {"manual_dial": {"before": False, "after": True}}
    assert second.detail["changes"] == {"manual_dial": {"before": True, "after": False}}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["set", "ghost", "--skills", "x"], "no user named 'ghost'"),
        (["show", "ghost"], "no user named 'ghost'"),
        (["set", "boss", "--skills", "x"], "'boss' is a supervisor, not an agent"),
        (
            ["set", "mei", "--daily-hours", "25"],
            "--daily-hours: 25 is out of range: more than 0, at most 24 hours",
        ),
        (["set", "mei", "--daily-hours", "0"], "--daily-hours: 0 is out of range"),
        (["set", "mei", "--daily-hours", "lots"], "--daily-hours: 'lots' is not a number of hours"),
        (["set", "mei", "--languages", "zh CN"], "--languages: 'zh CN' is not a language tag"),
        (["set", "mei", "--skills", "any"], "--skills: 'any' is not a skill"),
        (["set", "mei"], "nothing to change: give --skills, --daily-hours, --lines, --languages or --level"),
    ],
)
def test_cli_errors_say_what_and_where(cli: CliRunner, db: Database, args: list[str], says: str) -> None:
    result = cli.invoke(app, ["agents", *args])
    assert result.exit_code == 2 and says in result.stderr, result.output
    assert result.stdout == ""
    assert audits(db) == []


# ------------------------------------------------------------------------------ the API


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    people(db)
    with TestClient(create_app(settings, db), headers={"Accept-Language": "en"}) as c:
        yield c


def test_api_roles(client: TestClient) -> None:
    boss, root, maria = login(client, "boss"), login(client, "root"), login(client, "maria")
    mei, lin = login(client, "mei"), login(client, "lin")
    assert client.get("/api/agents").status_code == 401
    for who in (boss, root):
        listed = client.get("/api/agents", headers=who)
        assert listed.status_code == 200 and [a["name"] for a in listed.json()] == ["lin", "mei"]
    for who in (maria, mei):
        assert client.get("/api/agents", headers=who).status_code == 403
    assert client.get("/api/agents/mei/profile", headers=mei).json()["display_name"] == "王梅"
    assert client.get("/api/agents/me/profile", headers=mei).json()["name"] == "mei"
    other = client.get("/api/agents/mei/profile", headers=lin)
    assert other.status_code == 403 and "only their own profile" in other.json()["detail"]["message"]
    assert client.get("/api/agents/mei/profile", headers=maria).status_code == 403
    assert client.get("/api/agents/mei/profile", headers=boss).status_code == 200
    body = {"skills": ["welfare"], "lines": [], "languages": ["zh-CN"], "daily_hours": 4}
    for who in (mei, maria):
        assert client.put("/api/agents/mei/profile", headers=who, json=body).status_code == 403
        assert client.patch("/api/agents/mei/profile", headers=who, json=body).status_code == 403
    assert client.put("/api/agents/mei/profile", headers=root, json=body).status_code == 200


def test_api_put_replaces_patch_changes_and_both_are_audited(client: TestClient, db: Database) -> None:
    boss = login(client, "boss")
    body = {
        "skills": ["welfare", "vaccination"],
        "lines": ["12345"],
        "languages": ["zh-cn", "yue"],
        "daily_hours": 3,
    }
    put = client.put("/api/agents/mei/profile", headers=boss, json=body)
    assert put.status_code == 200, put.text
    assert put.json()["endpoint"].startswith("ag"), "a random endpoint id, not the login name"
    assert put.json() | {"display_name": None, "endpoint": "(random)"} == {
        "name": "mei", "display_name": None, "disabled": False, "endpoint": "(random)",
        "skills": ["welfare", "vaccination"], "lines": ["12345"], "languages": ["zh-CN", "yue"],
 "daily_target_minutes": 180, "daily_hours": 3.0, "manual_dial": False,
        "level": "agent", "changed": ["skills", "lines", "languages", "daily_target_minutes"],
    }  # fmt: skip
    patched = client.patch("/api/agents/mei/profile", headers=boss, json={"lines": []}).json()
    assert (patched["lines"], patched["skills"], patched["changed"]) == (
        [],
        ["welfare", "vaccination"],
        ["lines"],
    )
    assert client.patch("/api/agents/mei/profile", headers=boss, json={}).json()["changed"] == []
    assert [(a.actor, list(a.detail["changes"])) for a in audits(db)] == [
        ("boss", ["skills", "lines", "languages", "daily_target_minutes"]),
        ("boss", ["lines"]),
    ]


@pytest.mark.parametrize(
    ("method", "body", "field", "words"),
    [
        ("put", {"skills": ["welfare"]}, "lines", "This is required."),
        ("patch", {"daily_hours": 0}, "daily_hours", "0 is out of range: more than 0, at most 24 hours"),
        ("patch", {"daily_hours": 25}, "daily_hours", "25 is out of range"),
        ("patch", {"daily_hours": "lots"}, "daily_hours", "A number is expected here."),
        ("patch", {"languages": ["Cantonese!"]}, "languages", "not a language tag"),
        ("patch", {"skills": ["any"]}, "skills", "'any' is not a skill"),
        ("patch", {"skills": "welfare"}, "skills", "A list is expected here."),
        ("patch", {"daily_target_hours": 4}, "daily_target_hours", "This setting is not known."),
    ],
)
def test_api_refuses_bad_profiles_naming_the_field(
    client: TestClient, db: Database, method: str, body: dict[str, Any], field: str, words: str
) -> None:
    resp = client.request(method.upper(), "/api/agents/mei/profile", headers=login(client, "boss"), json=body)
    assert resp.status_code == 422, resp.text
    problem = next(p for p in resp.json()["detail"] if field in p["loc"])
    assert words in problem["msg"]
    assert audits(db) == []


def test_api_unknown_agent_and_not_an_agent(client: TestClient) -> None:
    boss = login(client, "boss")
    gone = client.patch("/api/agents/ghost/profile", headers=boss, json={"skills": ["x"]})
    assert gone.status_code == 404
    assert gone.json()["detail"] == {"code": "no_such_user", "message": "no user named 'ghost'"}
    notagent = client.get("/api/agents/maria/profile", headers=boss)
    assert notagent.status_code == 404 and notagent.json()["detail"]["code"] == "not_an_agent"
    assert "'maria' is a manager, not an agent" in notagent.json()["detail"]["message"]
    chinese = client.get("/api/agents/maria/profile", headers=boss | {"Accept-Language": "zh-CN"})
    assert chinese.json()["detail"] == {
        "code": "not_an_agent",
        "message": "“maria”是活动经理，不是坐席：只有坐席才有坐席资料",
    }


# ------------------------------------------------------------------------------ the console, no script


def console_login(client: TestClient, name: str) -> None:
    assert sign_in_to_console(client, name).status_code == 303


def test_console_page_lists_and_the_form_saves_without_javascript(client: TestClient, db: Database) -> None:
    client.headers["Accept-Language"] = "zh-CN"  # a Chinese supervisor's browser
    console_login(client, "mei")
    assert client.get("/console/agents", follow_redirects=False).status_code == 403
    console_login(client, "boss")
    assert "/console/agents" in client.get("/console").text, "supervisors find the page in the menu"
    page = client.get("/console/agents").text
    assert '<html lang="zh-CN">' in page and "<h1>坐席资料</h1>" in page and "王梅 (mei)" in page
    assert "Agents' profiles" not in page, "one language on the page"
    assert 'id="profile-form"' not in page, "no form until an agent is chosen"
    form = client.get("/console/agents", params={"agent": "mei"}).text
    assert 'action="/console/agents/mei"' in form and 'id="daily_hours"' in form and 'value="4"' in form
    saved = client.post(
        "/console/agents/mei",
        data={"skills": "welfare，vaccination", "lines": "", "languages": "zh-CN, yue", "daily_hours": "3.5"},
    )
    assert saved.status_code == 200 and saved.url.path == "/console/agents"
    assert (
        "已保存。mei (王梅)：技能 welfare，vaccination；线路 全部；语言 zh-CN，yue；每天 3小时30分。"
        in saved.text
    )
    bad = client.post(
        "/console/agents/mei", data={"skills": "welfare", "lines": "", "languages": "", "daily_hours": "30"}
    )
    assert bad.status_code == 422
    assert "每日目标小时数：30 超出范围：须大于 0，最多 24 小时。没有保存任何内容。" in bad.text
    assert 'aria-invalid="true" autofocus' in bad.text and 'value="30"' in bad.text, "what was typed is kept"
    with db.session() as s:
        assert profiles.get_profile(s, "mei").daily_hours == 3.5
    assert [a.actor for a in audits(db)] == ["boss"]
