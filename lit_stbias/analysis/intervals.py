"""The one place where a spread over seeds becomes a 95% interval.

``normal`` (the default, as the authors' release): 1.96 · std / √n with the population standard deviation
(ddof 0). ``student-t``: t(0.975, n − 1) · std / √n with the sample standard deviation (ddof 1), wider for few
seeds. Documents record which one they used (``BiasDocument.interval``).

>>> round(half_width([1.0, 2.0, 3.0]), 4)
0.924
>>> round(half_width([1.0, 2.0, 3.0], "student-t"), 4)
2.4841
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

INTERVAL_METHODS = ("normal", "student-t")
LEVEL = 0.95
DESCRIPTIONS = {
    "normal": "1.96 * std / sqrt(n), population std (ddof 0), as the authors' release",
    "student-t": "t(0.975, n - 1) * std / sqrt(n), sample std (ddof 1)",
}


def check_method(method: str) -> str:
    if method not in INTERVAL_METHODS:
        raise ValueError(f"unknown interval method {method!r}; use one of {', '.join(INTERVAL_METHODS)}.")
    return method


def half_width(values: Sequence[float] | np.ndarray, method: str = "normal", axis: int = 0):
    """Half-width of the 95% interval of the mean of ``values`` along ``axis`` (a float for 1-D input).

    One value gives 0: a single seed says nothing about the spread, and reports show no interval for it.
    """
    check_method(method)
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    if n < 2:
        width = np.zeros_like(values.sum(axis=axis))
    elif method == "normal":
        width = 1.96 * values.std(axis=axis, ddof=0) / math.sqrt(n)
    else:
        from scipy.stats import t

        width = float(t.ppf(0.5 + LEVEL / 2, n - 1)) * values.std(axis=axis, ddof=1) / math.sqrt(n)
    return float(width) if np.ndim(width) == 0 else width


__all__ = ["DESCRIPTIONS", "INTERVAL_METHODS", "LEVEL", "check_method", "half_width"]
