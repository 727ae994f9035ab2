"""`warmline campaign|lists|dnc` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from typer.testing import Result

from tests.unit.test_dialer_import import MESSY
from tests.utils.cli import CliRunner, ok
from warmline.cli import app

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "campaigns"


def one_json(result: Result) -> dict:  # type: ignore[type-arg]
    data = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert isinstance(data, dict)
    return data


def test_campaign_create_show_and_status(cli: CliRunner) -> None:
    made = one_json(
        ok(cli, "campaign", "create", "welfare", "--from", str(EXAMPLES / "elder-welfare.yaml"), "--json")
    )
    assert (made["name"], made["status"], made["kind"], made["daily_cap"]) == ("welfare", "draft", "agent", 2)
    shown = one_json(ok(cli, "campaign", "show", "welfare", "--json"))
    assert shown["windows"]["sun"] == ["09:00-11:30", "14:30-17:00"] and shown["contacts"]["total"] == 0
    assert "welfare (agent, elder welfare): draft" in ok(cli, "campaign", "show", "welfare").stdout
    plain = one_json(ok(cli, "campaign", "create", "hotline", "--json"))  # sensible defaults, no file
    assert plain["windows"]["mon"] == ["09:00-12:00", "13:30-20:00"] and plain["timezone"] == "Asia/Shanghai"
    assert "campaign welfare: running" in ok(cli, "campaign", "start", "welfare").stdout
    assert one_json(ok(cli, "campaign", "pause", "welfare", "--json"))["status"] == "paused"
    listed = json.loads(ok(cli, "campaign", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["welfare", "hotline"]  # priority 8 before 5


def test_campaign_create_with_a_mode(cli: CliRunner) -> None:
    made = one_json(ok(cli, "campaign", "create", "followup", "--mode", "preview", "--json"))
    assert (made["mode"], made["kind"], made["manual_dial"]) == ("preview", "agent", False)
    preview = one_json(
        ok(cli, "campaign", "create", "w49", "--from", str(EXAMPLES / "welfare-preview.yaml"), "--json")
    )
    assert (preview["mode"], preview["skill"], preview["language"]) == ("preview", "welfare", "zh-CN")
    listed = {c["name"]: c["mode"] for c in json.loads(ok(cli, "campaign", "list", "--json").stdout)}
    assert listed == {"w49": "preview", "followup": "preview"}
    refused = cli.invoke(
        app, ["campaign", "create", "x", "--mode", "preview", "--kind", "broadcast", "--flow", "f"]
    )
    assert refused.exit_code == 2 and "mode:" in refused.stderr


def test_a_predictive_campaign_shows_its_abandon_cap(cli: CliRunner) -> None:
    made = one_json(ok(cli, "campaign", "create", "epi", "--mode", "predictive", "--json"))
    assert made["pacing"]["abandon_limit"] == 0.03 and made["pacing"]["window_hours"] == 24
    shown = ok(cli, "campaign", "show", "epi").stdout
    assert (
        "abandon cap 3% of live answers over 24 h; an agent within 1.2 s of AMD's verdict, else the apology"
        in shown
    )


def test_campaign_errors_exit_2_with_the_reason(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: broadcast\nmax_attempts: 0\n")
    result = cli.invoke(app, ["campaign", "create", "x", "--from", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml: invalid campaign settings" in result.stderr and "line 2: max_attempts" in result.stderr
    assert cli.invoke(app, ["campaign", "show", "nope"]).exit_code == 2
    ok(cli, "campaign", "create", "dup")
    result = cli.invoke(app, ["campaign", "create", "dup"])
    assert result.exit_code == 2 and "already exists" in result.stderr
    ok(cli, "campaign", "finish", "dup")
    result = cli.invoke(app, ["campaign", "start", "dup"])
    assert result.exit_code == 2 and "is finished" in result.stderr


def test_lists_import_json_report_and_double_import(cli: CliRunner, tmp_path: Path) -> None:
    ok(cli, "campaign", "create", "welfare", "--elder-welfare")
    listing = tmp_path / "名单.csv"
    listing.write_bytes(MESSY)
    report_file = tmp_path / "rejected.csv"
    data = one_json(
        ok(
            cli,
            "lists",
            "import",
            str(listing),
            "--campaign",
            "welfare",
            "--report",
            str(report_file),
            "--json",
        )
    )
    assert {k: data[k] for k in ("rows", "accepted", "rejected", "skipped")} == {
        "rows": 16, "accepted": 8, "rejected": 7, "skipped": 1,
    }  # fmt: skip
    assert data["reasons"] == {
        "invalid": 2, "duplicate": 1, "formula": 1, "missing": 1, "not_allowed_country": 1, "scientific_notation": 1,
    }  # fmt: skip
    with report_file.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["row"], r["reason"]) for r in rows] == [
        ("7", "duplicate"), ("9", "formula"), ("10", "invalid"), ("11", "missing"), ("12", "not_allowed_country"),
        ("15", "scientific_notation"), ("19", "invalid"),
    ]  # fmt: skip
    assert rows[1]["value"].startswith("'=HYPERLINK")  # the report itself is safe to open in Excel
    again = ok(cli, "lists", "import", str(listing), "--campaign", "welfare")
    assert "accepted 0" in again.stdout and "was already imported into welfare as import #1" in again.stdout
    history = json.loads(ok(cli, "lists", "imports", "--campaign", "welfare", "--json").stdout)
    assert [(h["id"], h["accepted"]) for h in history] == [(2, 0), (1, 8)]
    out = tmp_path / "again.csv"
    assert "written to" in ok(cli, "lists", "report", "2", "--out", str(out)).stdout
    assert len(out.read_text(encoding="utf-8-sig").splitlines()) == 1 + 15


def test_lists_import_with_mapping_and_dnc(cli: CliRunner, tmp_path: Path) -> None:
    ok(cli, "campaign", "create", "c1")
    listing = tmp_path / "list.csv"
    listing.write_text(
        "a;b;c\n张三;13800138000;13900139000\n李四;13700137000;13600136000\n", encoding="utf-8"
    )
    optout = tmp_path / "optout.csv"
    optout.write_text("13900139000\n", encoding="utf-8")
    data = one_json(
        ok(
            cli,
            "lists",
            "import",
            str(listing),
            "-c",
            "c1",
            "--mapping",
            "phone=C,name=A",
            "--dnc",
            str(optout),
            "--json",
        )
    )
    assert (data["accepted"], data["reasons"], data["columns"]["phone"]) == (1, {"dnc": 1}, "C (c)")
    assert data["dnc_file"]["added"] == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "Excel 97-2003"),
        (b"name,city\nA,B\n", "no phone column found"),
        (b"\x00\x01\x02", "binary data"),
    ],
)
def test_bad_files_exit_2_naming_the_file(cli: CliRunner, tmp_path: Path, content: bytes, says: str) -> None:
    ok(cli, "campaign", "create", "c1")
    bad = tmp_path / "upload.dat"
    bad.write_bytes(content)
    result = cli.invoke(app, ["lists", "import", str(bad), "--campaign", "c1", "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "error: upload.dat: " in result.stderr and says in result.stderr
    shown = one_json(ok(cli, "campaign", "show", "c1", "--json"))
    assert shown["contacts"]["total"] == 0
    missing = cli.invoke(app, ["lists", "import", str(tmp_path / "nothere.csv"), "--campaign", "c1"])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    unknown = cli.invoke(app, ["lists", "import", str(bad), "--campaign", "nope"])
    assert unknown.exit_code == 2 and "no campaign named 'nope'" in unknown.stderr
    bad_map = cli.invoke(app, ["lists", "import", str(bad), "--campaign", "c1", "--mapping", "email=C"])
    assert bad_map.exit_code == 2 and "unknown field 'email'" in bad_map.stderr


def test_preview_and_export(cli: CliRunner, tmp_path: Path) -> None:
    ok(cli, "campaign", "create", "c1")
    listing = tmp_path / "list.csv"
    listing.write_bytes(MESSY)
    preview = one_json(ok(cli, "lists", "preview", str(listing), "--json"))
    assert preview["header_row"] == 3 and preview["rows"][0]["phone"] == "138****8000"
    assert "13800138000" not in ok(cli, "lists", "preview", str(listing)).stdout
    ok(cli, "lists", "import", str(listing), "-c", "c1")
    out = tmp_path / "c1.xlsx"
    done = one_json(
        ok(cli, "lists", "export", "--campaign", "c1", "--format", "xlsx", "--out", str(out), "--json")
    )
    assert done["rows"] == 8
    ws = openpyxl.load_workbook(out).active
    assert ws["A1"].value == "phone" and ws["A2"].value.startswith("+86")
    masked = tmp_path / "c1.csv"
    ok(cli, "lists", "export", "-c", "c1", "--out", str(masked), "--masked")
    assert "138****8000" in masked.read_text(encoding="utf-8-sig")


def test_dnc_commands(cli: CliRunner, tmp_path: Path) -> None:
    ok(cli, "campaign", "create", "c1")
    added = one_json(ok(cli, "dnc", "add", "13800138000", "010-12345678", "--reason", "asked", "--json"))
    assert added["added"] == 2
    assert one_json(ok(cli, "dnc", "add", "13800138000", "--json"))["already"] == 1
    rejected = cli.invoke(app, ["dnc", "add", "call me maybe"])
    assert rejected.exit_code == 2 and "not a phone number" in rejected.stdout
    ok(cli, "dnc", "add", "13700137000", "--campaign", "c1")
    listed = one_json(ok(cli, "dnc", "list", "--json"))
    assert listed["total"] == 2 and {e["phone"] for e in listed["entries"]} == {
        "+8613800138000",
        "+861012345678",
    }
    assert one_json(ok(cli, "dnc", "list", "-c", "c1", "--json"))["entries"][0]["phone"] == "+8613700137000"
    assert "removed from global" in ok(cli, "dnc", "remove", "138 0013 8000").stdout
    assert cli.invoke(app, ["dnc", "remove", "13800138000"]).exit_code == 1
    file = tmp_path / "dnc.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["电话"])
    wb.active.append([13600136000])
    wb.active.append(["=A1"])
    wb.save(file)
    imported = one_json(ok(cli, "dnc", "import", str(file), "--campaign", "c1", "--json"))
    assert (imported["added"], imported["rejected"], imported["reasons"]) == (1, 1, {"formula": 1})


def test_progress_bar_goes_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    from dialer.cli import ProgressBar

    bar = ProgressBar("importing big.csv", enabled=True)
    bar(0, 1000)
    bar(1000, 1000)
    bar.close()
    out = capsys.readouterr()
    assert out.out == ""
    assert "importing big.csv [" in out.err and "100%" in out.err and out.err.endswith("\n")
    quiet = ProgressBar("x", enabled=False)
    quiet(5, 10)
    quiet.close()
    assert capsys.readouterr().err == ""
