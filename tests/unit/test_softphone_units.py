"""Softphone pieces without SIP: jitter buffer, MOS estimate, masking, key map, screen pop, states."""

from __future__ import annotations

import asyncio

import pytest

from core.phones import mask, mask_in_text
from softphone.audio import FRAME_BYTES, JitterBuffer, level_dbfs, tone
from softphone.calls import display_of, warmline_headers
from softphone.keymap import BINDINGS, check_bindings, key_table
from softphone.presence import AgentStatus, NullPublisher, StateError
from softphone.privacy import screen_fields
from softphone.quality import StreamSample, assess, mos_from_r, r_factor

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

# ------------------------------------------------------------------ jitter buffer


def frame(n: int) -> bytes:
    return bytes([n % 256]) * FRAME_BYTES


def test_jitter_buffer_waits_for_its_cushion_then_plays_in_order() -> None:
    jb = JitterBuffer(target=2, max_frames=5)
    assert jb.pop() == bytes(FRAME_BYTES)  # nothing yet: silence
    jb.push(frame(1))
    assert jb.pop() == bytes(FRAME_BYTES)  # one frame is not the cushion yet
    jb.push(frame(2))
    assert jb.pop() == frame(1) and jb.pop() == frame(2)
    assert jb.stats.underruns == 0


def test_jitter_buffer_underrun_refills_before_playing_again() -> None:
    jb = JitterBuffer(target=2, max_frames=5)
    for i in range(2):
        jb.push(frame(i))
    jb.pop(), jb.pop()
    assert jb.pop() == bytes(FRAME_BYTES) and jb.stats.underruns == 1
    jb.push(frame(7))
    assert jb.pop() == bytes(FRAME_BYTES)  # refilling
    jb.push(frame(8))
    assert jb.pop() == frame(7)


def test_jitter_buffer_drops_oldest_when_the_producer_runs_fast() -> None:
    jb = JitterBuffer(target=2, max_frames=4)
    for i in range(10):
        jb.push(frame(i))
    assert len(jb) == 4 and jb.stats.dropped == 6
    assert jb.pop() == frame(6)


def test_jitter_buffer_pads_short_frames_and_measures_its_latency() -> None:
    jb = JitterBuffer(target=2, max_frames=6)
    jb.push(b"\x01\x02")
    assert len(jb) == 1
    # a steady producer/consumer at the same rate keeps ~target frames: ~40 ms at 20 ms frames
    jb = JitterBuffer(target=2, max_frames=6)
    jb.push(frame(0))
    for i in range(1, 500):
        jb.push(frame(i))
        jb.pop()
    assert 30 <= jb.added_latency_ms <= 45
    with pytest.raises(ValueError):
        JitterBuffer(target=6, max_frames=6)


def test_jitter_buffer_with_two_drifting_clocks_stays_bounded() -> None:
    """Synthetic clocks: producer 0.5 % fast. Latency must stay bounded (drops, no creep)."""
    jb = JitterBuffer(target=2, max_frames=6)
    t_prod, t_cons, step = 0.0, 0.0, 0.020
    levels = []
    for _ in range(20_000):
        if t_prod <= t_cons:
            jb.push(frame(0))
            t_prod += step / 1.005
        else:
            jb.pop()
            levels.append(len(jb))
            t_cons += step
    assert max(levels) <= 6
    assert jb.stats.dropped > 0 and jb.stats.underruns <= 1


def test_tone_and_level() -> None:
    assert level_dbfs(bytes(640)) == float("-inf")
    assert -14 < level_dbfs(tone(440, 100, amplitude=0.3)) < -12  # 0.3 FS sine = -13.5 dBFS


# ------------------------------------------------------------------ MOS


def test_perfect_line_scores_about_4_4() -> None:
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.01)
    report = assess(StreamSample("G722/16000", rx_packets=1000, rtt_ms=20, jb_delay_ms=40))
    assert report.mos > 4.3 and report.verdict == "good"


def test_loss_and_delay_lower_the_score_monotonically() -> None:
    scores = [mos_from_r(r_factor("PCMU", loss, 50)) for loss in (0, 1, 3, 5, 10, 20)]
    assert scores == sorted(scores, reverse=True)
    assert scores[3] < 4.0 and scores[5] < 3.1  # 5 % loss is no longer "good"; 20 % is "bad"
    assert mos_from_r(r_factor("PCMU", 0, 400)) < mos_from_r(r_factor("PCMU", 0, 100))
    assert mos_from_r(-5) == 1.0 and mos_from_r(120) == 4.5


def test_discarded_late_packets_count_as_loss() -> None:
    s = StreamSample("PCMA/8000", rx_packets=950, rx_lost=25, rx_discarded=25)
    assert s.rx_loss_pct == pytest.approx(100 * 50 / 975)
    assert assess(s).verdict == "fair" and assess(s).mos < 4.0
    # A starved media clock discards more jitter-buffer frames than packets arrived: still ≤ 100 %.
    starved = StreamSample("PCMU/8000", rx_packets=250, rx_lost=0, rx_discarded=448)
    assert starved.rx_loss_pct == 100.0 and assess(starved).loss_pct == 100.0


# ------------------------------------------------------------------ masking and the screen pop


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+8613800138000", "138****8000"),  # the house format: national digits
        ("138 0013 8000", "138****8000"),
        ("01065521234", "010****1234"),
        ("65521234", "65****34"),
        ("1001", "**01"),
        ("anonymous", "anonymous"),
    ],
)
def test_mask_phone(raw: str, masked: str) -> None:
    assert mask(raw) == masked


def test_phone_numbers_inside_text_are_masked() -> None:
    assert mask_in_text("Wang 13800138000 (home)") == "Wang 138****8000 (home)"
    assert mask_in_text("extension lan") == "extension lan"


def test_screen_fields_decode_and_mask() -> None:
    fields = screen_fields(
        {
            "phone": "13800138000",
            "field-name": "%E7%8E%8B%E5%A5%B6%E5%A5%B6",
            "field-note": "call 13912345678",
            "x": "y",
        }
    )
    assert fields == {"phone": "138****8000", "name": "王奶奶", "note": "call 139****5678"}
    assert screen_fields({"phone": "138****8000"}) == {"phone": "138****8000"}, "masked once, not shrunk"


def test_warmline_headers_from_a_sip_message() -> None:
    msg = (
        "INVITE sip:mei@127.0.0.1 SIP/2.0\r\nFrom: <sip:13800138000@lab>\r\nX-Warmline-Campaign: flu\r\n"
        "x-warmline-phone:13800138000\r\nContent-Type: application/sdp\r\n\r\nX-Warmline-Evil: body\r\n"
    )
    assert warmline_headers(msg) == {"campaign": "flu", "phone": "13800138000"}
    assert display_of('"Wang" <sip:13800138000@lab;user=phone>') == "13800138000"


# ------------------------------------------------------------------ keys


def test_key_map_has_no_clashes_or_browser_keys() -> None:
    assert check_bindings() == []
    table = key_table()
    assert table["F2"] == "answer" and table["F4"] == "hangup" and table["Alt+t"] == "transfer"
    actions = {b.action for b in BINDINGS}
    assert {
        "answer",
        "hangup",
        "hold",
        "mute",
        "transfer",
        "consult",
        "complete",
        "ready",
        "break",
    } <= actions


def test_every_binding_has_a_label_and_at_most_one_modifier() -> None:
    for b in BINDINGS:
        assert b.label and b.keys
        for key in b.keys:
            assert key.count("+") <= 1, key


# ------------------------------------------------------------------ agent states


def test_state_machine_and_reasons() -> None:
    async def go() -> list[str]:
        pub = NullPublisher()
        st = AgentStatus("mei", pub)
        with pytest.raises(StateError):
            await st.change("wrap_up")
        await st.change("available")
        with pytest.raises(StateError, match="reason"):
            await st.change("break")
        await st.change("break", "lunch")
        assert st.spoken() == "on a break (Meal)"
        await st.change("available")
        await st.change("on_call")
        await st.change("wrap_up")
        await st.change("available")
        await st.change("logged_out")
        return [m.state for m in pub.sent]  # type: ignore[attr-defined]

    assert asyncio.run(go()) == [
        "available",
        "break",
        "available",
        "on_call",
        "wrap_up",
        "available",
        "logged_out",
    ]
