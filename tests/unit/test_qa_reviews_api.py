"""Reviews over HTTP on SQLite and PostgreSQL: claim, blind double scoring, agreement, averages
(random and targeted apart), agents' own reviews and acknowledgement, roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.audit import AuditEntry
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from recordings.models import CallRecording
from recordings.qa import service as qa
from recordings.qa.sampling import SamplingParams, TargetRules
from tests.unit.test_recordings_registry import T0, make_campaign, register_tone
from tests.utils import PASSWORD, login
from warmline.app import create_app

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

GOOD = {"greeting": "yes", "identity": "yes", "wellbeing": "yes", "listening": 4, "escalation": "yes",
        "summary": "yes", "courtesy": 4}  # fmt: skip


@pytest.fixture
def client(settings: Settings, db: Database, tmp_path: Path) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    cid = make_campaign(db)
    with db.session() as s:
        for name, role in (("qa1", Role.qa), ("qa2", Role.qa), ("li", Role.agent), ("wang", Role.agent)):
            auth.create_user(s, name, role, PASSWORD, actor="test")
    for i in range(3):
        register_tone(db, settings, tmp_path, i, campaign_id=cid, campaign="welfare", elder_welfare=True,
                      agent="li", started_at=T0)  # fmt: skip
    with db.session() as s:
        s.get(CallRecording, s.scalars(select(CallRecording.id)).first()).outcome = "opted_out"  # type: ignore[union-attr]
        params = SamplingParams(rate=1.0, min_per_agent=1, max_per_agent=3, double_score_rate=0.34)
        rules = TargetRules(short_call_s=None)  # only the opt-out is targeted
        qa.draw_sample(s, settings, "2026-W48", seed=2, params=params, rules=rules, actor="test")
    with TestClient(create_app(settings, db), headers={"Accept-Language": "en"}) as c:
        yield c


def test_blind_double_scoring_agreement_and_feedback(client: TestClient, db: Database) -> None:
    q1, q2, li, wang = (login(client, n) for n in ("qa1", "qa2", "li", "wang"))
    assert client.get("/api/qa/queue", headers=li).status_code == 403
    items = client.get("/api/qa/queue", headers=q1).json()
    kinds = sorted(i["sample_kind"] for i in items)
    assert kinds == ["random", "random", "random", "targeted"]
    double = next(i for i in items if i["reviewers_needed"] == 2)
    single = next(i for i in items if i["sample_kind"] == "random" and i["reviewers_needed"] == 1)
    targeted = next(i for i in items if i["sample_kind"] == "targeted")
    assert "opt-out" in targeted["reason_text"]

    # single review: claimed by one, refused to the other
    r = client.post(f"/api/qa/items/{single['item_id']}/claim", headers=q1)
    assert r.status_code == 201 and r.json()["scorecard"] == "welfare_call"
    assert client.post(f"/api/qa/items/{single['item_id']}/claim", headers=q2).status_code == 409
    bad = client.post(
        f"/api/qa/reviews/{r.json()['review_id']}/complete",
        headers=q1,
        json={"answers": {"greeting": "maybe"}},
    )
    assert bad.status_code == 422 and "greeting" in bad.json()["detail"]["message"]
    assert (
        client.post(
            f"/api/qa/reviews/{r.json()['review_id']}/complete", headers=q2, json={"answers": GOOD}
        ).status_code
        == 403
    )
    done = client.post(f"/api/qa/reviews/{r.json()['review_id']}/complete", headers=q1,
                       json={"answers": GOOD, "comment": "Lovely call", "item_comments": {"greeting": "warm"}})  # fmt: skip
    assert done.status_code == 200 and done.json()["score"] == 100.0

    # double: both claim; neither sees the other's answers until both are complete
    a = client.post(f"/api/qa/items/{double['item_id']}/claim", headers=q1).json()
    b = client.post(f"/api/qa/items/{double['item_id']}/claim", headers=q2).json()
    client.post(f"/api/qa/reviews/{a['review_id']}/complete", headers=q1, json={"answers": GOOD})
    peek = client.get(f"/api/qa/reviews/{a['review_id']}", headers=q2).json()
    assert "answers" not in peek and "hidden" in peek
    view = client.get(f"/api/qa/items/{double['item_id']}", headers=q2).json()
    assert [("answers" in rv) for rv in view["reviews"]] == [False, True]  # only qa2's own
    assert client.get("/api/qa/my-reviews", headers=li).json().__len__() == 1  # not the half-done one
    other = {**GOOD, "escalation": "no", "listening": 2}  # an auto-fail
    res = client.post(
        f"/api/qa/reviews/{b['review_id']}/complete", headers=q2, json={"answers": other}
    ).json()
    assert res["score"] == 0.0 and res["auto_failed"] is True
    assert "answers" in client.get(f"/api/qa/reviews/{a['review_id']}", headers=q2).json()

    agreement = client.get("/api/qa/agreement", headers=q1).json()
    assert agreement["calls"] == 1 and agreement["answers"] == 7
    assert agreement["agreement"] == round(5 / 7, 3)
    per = {i["item"]: i for i in agreement["items"]}
    assert (
        per["welfare_call.escalation"]["agreement"] == 0.0
        and per["welfare_call.greeting"]["agreement"] == 1.0
    )
    assert agreement["mean_score_gap"] == 100.0

    # the targeted review counts apart from the random sample's average
    t = client.post(f"/api/qa/items/{targeted['item_id']}/claim", headers=q1).json()
    client.post(
        f"/api/qa/reviews/{t['review_id']}/complete", headers=q1, json={"answers": {**GOOD, "summary": "no"}}
    )
    avg = client.get("/api/qa/averages", headers=q1).json()["agents"][0]
    assert avg["random"] == {"mean_score": 66.7, "reviews": 3} and avg["targeted"]["reviews"] == 1

    # the agent's own reviews, acknowledged; others' are not theirs
    mine = client.get("/api/qa/my-reviews", headers=li).json()
    assert len(mine) == 4 and {m["sample_kind"] for m in mine} == {"random", "targeted"}
    first = mine[-1]
    assert (
        client.post(f"/api/qa/my-reviews/{first['review_id']}/acknowledge", headers=wang).status_code == 404
    )
    ack = client.post(f"/api/qa/my-reviews/{first['review_id']}/acknowledge", headers=li)
    assert ack.status_code == 200 and ack.json()["acknowledged_at"]
    assert client.get("/api/qa/my-reviews", headers=wang).json() == []
    with db.session() as s:
        actions = [e.action for e in s.scalars(select(AuditEntry))]
    assert actions.count("qa.review.complete") == 4 and actions.count("qa.review.acknowledge") == 1


def test_sample_over_http_and_release(client: TestClient) -> None:
    q1 = login(client, "qa1")
    again = client.post("/api/qa/samples", headers=q1, json={"period": "2026-W48", "seed": 2})
    assert again.status_code == 422 and "other parameters" in again.text  # the fixture drew it with others
    new = client.post("/api/qa/samples", headers=q1, json={"period": "2026-W48", "seed": 3})
    assert new.status_code == 201 and new.json()["created"] is True
    assert client.post("/api/qa/samples", headers=q1, json={"period": "soon"}).status_code == 422
    item = client.get("/api/qa/queue", headers=q1).json()[0]
    review = client.post(f"/api/qa/items/{item['item_id']}/claim", headers=q1).json()
    assert client.post(f"/api/qa/reviews/{review['review_id']}/release", headers=q1).status_code == 204
    assert client.get(f"/api/qa/reviews/{review['review_id']}", headers=q1).status_code == 404
    assert client.get("/api/qa/scorecards/welfare_call", headers=q1).json()["name"] == "welfare_call"
    assert client.get("/api/qa/scorecards/nope", headers=q1).status_code == 404
