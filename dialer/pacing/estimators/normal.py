"""The standard normal CDF over numpy arrays (numpy has no erf; scipy is not a dependency).

Abramowitz and Stegun 7.1.26: |error| < 1.5e-7, far below anything a pacing decision can tell.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_SQRT2 = float(np.sqrt(2.0))


def erf(x: Array) -> Array:
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _P * a)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)), dtype=np.float64)


def normal_cdf(z: Array) -> Array:
    return np.asarray(0.5 * (1.0 + erf(z / _SQRT2)), dtype=np.float64)
