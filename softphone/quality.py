"""Call quality for remote support: jitter, loss, round trip and an MOS estimate per call.

The estimate is the ITU-T G.107 E-model reduced to what a softphone can measure (the common
"simplified E-model"): R = 93.2 − Id(delay) − Ie,eff(codec, loss), then MOS from R. Delay is the
one-way mouth-to-ear estimate: half the RTCP round trip + the jitter buffer's delay + codec and
packetisation (ptime + look-ahead). Packets the jitter buffer discarded as too late count as lost,
because the listener never hears them either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.i18n import N_

# Equipment impairment Ie and packet-loss robustness Bpl (G.113 Appendix I; with PLC).
CODEC_IMPAIRMENT: dict[str, tuple[float, float]] = {
    "PCMU": (0.0, 25.1),
    "PCMA": (0.0, 25.1),
    "G722": (0.0, 25.1),  # narrowband scale: a wideband call is at least as good as G.711
    "GSM": (20.0, 10.0),
    "iLBC": (11.0, 32.0),
    "speex": (11.0, 20.0),
}
DEFAULT_IMPAIRMENT = (10.0, 20.0)
CODEC_DELAY_MS = 25.0  # 20 ms frame + look-ahead and processing
R_DEFAULT = 93.2
# The verdict codes and the words a person hears for them (translated where they are said).
QUALITY_VERDICTS: dict[str, str] = {
    "good": N_("good"),
    "fair": N_("fair"),
    "poor": N_("poor"),
    "bad": N_("bad"),
}


@dataclass(frozen=True)
class StreamSample:
    """Cumulative figures of one call's audio stream, read from pjsua2's StreamStat."""

    codec: str = ""
    rx_packets: int = 0
    rx_lost: int = 0
    rx_discarded: int = 0
    rx_jitter_ms: float = 0.0
    rtt_ms: float = 0.0
    jb_delay_ms: float = 0.0
    tx_packets: int = 0
    tx_lost_reported: int = 0  # what the far end's RTCP says it lost of ours

    @property
    def rx_loss_pct(self) -> float:
        # At most 100: the jitter buffer counts discarded frames, not packets, and a starved media
        # clock (a busy PC) discards more frames than packets arrived (179 % was seen).
        expected = self.rx_packets + self.rx_lost
        return min(100.0, 100.0 * (self.rx_lost + self.rx_discarded) / expected) if expected else 0.0

    @property
    def tx_loss_pct(self) -> float:
        expected = self.tx_packets
        return 100.0 * self.tx_lost_reported / expected if expected else 0.0


def sample_from_stat(stat: Any, codec: str = "") -> StreamSample:
    """Read a pjsua2 `StreamStat` (RTCP statistics and jitter buffer state)."""
    rtcp, jbuf = stat.rtcp, stat.jbuf
    rx, tx = rtcp.rxStat, rtcp.txStat
    rtt = rtcp.rttUsec
    return StreamSample(
        codec=codec,
        rx_packets=int(rx.pkt),
        rx_lost=int(rx.loss),
        rx_discarded=int(rx.discard) + int(jbuf.discard),
        rx_jitter_ms=float(rx.jitterUsec.mean) / 1000.0 if int(rx.jitterUsec.n) else 0.0,
        rtt_ms=float(rtt.mean) / 1000.0 if int(rtt.n) else 0.0,
        jb_delay_ms=float(jbuf.avgDelayMsec),
        tx_packets=int(tx.pkt),
        tx_lost_reported=int(tx.loss),
    )


def codec_family(codec: str) -> str:
    return codec.split("/", 1)[0]


def delay_impairment(one_way_ms: float) -> float:
    d = max(0.0, one_way_ms)
    return 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)


def loss_impairment(codec: str, loss_pct: float, burst_ratio: float = 1.0) -> float:
    ie, bpl = CODEC_IMPAIRMENT.get(codec_family(codec), DEFAULT_IMPAIRMENT)
    ppl = max(0.0, min(100.0, loss_pct))
    return ie + (95.0 - ie) * ppl / (ppl / burst_ratio + bpl)


def r_factor(codec: str, loss_pct: float, one_way_ms: float) -> float:
    return R_DEFAULT - delay_impairment(one_way_ms) - loss_impairment(codec, loss_pct)


def mos_from_r(r: float) -> float:
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


@dataclass(frozen=True)
class QualityReport:
    codec: str
    jitter_ms: float
    loss_pct: float
    rtt_ms: float
    one_way_ms: float
    r: float
    mos: float

    @property
    def verdict(self) -> str:
        # The code; QUALITY_VERDICTS has the words to say.
        """Words for a person: good (≥ 4.0), fair (≥ 3.6), poor (≥ 3.1), bad."""
        if self.mos >= 4.0:
            return "good"
        if self.mos >= 3.6:
            return "fair"
        if self.mos >= 3.1:
            return "poor"
        return "bad"


def assess(sample: StreamSample) -> QualityReport:
    """The quality of what the agent hears (receive direction) and the line's delay."""
    one_way = sample.rtt_ms / 2 + sample.jb_delay_ms + CODEC_DELAY_MS
    loss = max(sample.rx_loss_pct, 0.0)
    r = r_factor(sample.codec, loss, one_way)
    return QualityReport(
        codec=sample.codec,
        jitter_ms=round(sample.rx_jitter_ms, 1),
        loss_pct=round(loss, 2),
        rtt_ms=round(sample.rtt_ms, 1),
        one_way_ms=round(one_way, 1),
        r=round(r, 1),
        mos=round(mos_from_r(r), 2),
    )
