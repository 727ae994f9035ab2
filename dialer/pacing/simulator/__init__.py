"""The pacing simulator: a traffic model (`traffic`) and a discrete-event run (`run`) that drives the
production pacer classes. See docs/pacing.md for the model and its sources."""

from dialer.pacing.simulator.run import JSON_KEYS, Result, Simulation, simulate
from dialer.pacing.simulator.traffic import Staffing, Traffic

__all__ = ["JSON_KEYS", "Result", "Simulation", "Staffing", "Traffic", "simulate"]
