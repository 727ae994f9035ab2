"""The pacer's estimators, each in its own module: live-answer rate and time to answer
(`answer_rate`), talk and wrap-up durations (`durations`), the abandon ledger over rolling
windows (`ledger`)."""

from dialer.pacing.estimators.answer_rate import AnswerRate, AnswerSignals, ResolutionTimes
from dialer.pacing.estimators.durations import Durations, lognormal_params
from dialer.pacing.estimators.ledger import AbandonLedger

__all__ = ["AbandonLedger", "AnswerRate", "AnswerSignals", "Durations", "ResolutionTimes", "lognormal_params"]
