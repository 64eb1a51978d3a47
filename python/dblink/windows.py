"""Which steps each network run sees and keeps: windows, their batches, and the confidence.

For every output step t the network sees the window of steps [t − W, t + W] (clipped at the movie
ends) and its output at t is kept; with ``stride`` K one window keeps its K central steps (K = 1 is
the paper's exact mode). Windows are planned lazily: the plan of a movie of any length takes
constant memory.

Confidence: every window also decodes the steps δ = max(K, ⌈W/2⌉) before and after its kept ones.
Each step t thus gets up to two more estimates from windows shifted by ±δ steps (which see a
different stretch of the movie around t). The confidence is ``1 − RMS(estimate − kept output)``,
clipped to [0, 1]: 1 where the reconstruction does not depend on the window's placement, low where
it does (motion ambiguity, few localizations, hallucination risk).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import groupby, islice
from typing import Iterable, Iterator

import numpy as np

from .errors import DBlinkError


@dataclass(frozen=True)
class Window:
    """One network run: input steps [start, stop), decoded steps ``keep`` (+ ``alt``), absolute."""

    start: int
    stop: int
    keep: tuple[int, ...]
    alt: tuple[int, ...] = ()

    @property
    def signature(self) -> tuple:
        """Windows with the same signature can run in one batch."""
        return (self.stop - self.start, tuple(k - self.start for k in self.keep),
                tuple(a - self.start for a in self.alt))


def confidence_shift(window: int, stride: int) -> int:
    """δ: the confidence's alternate estimates of step t come from windows keeping t ± δ."""
    return min(window, max(stride, math.ceil(window / 2)))


def iter_windows(n_steps: int, window: int, stride: int = 1,
                 confidence: bool = False) -> Iterator[Window]:
    """Windows covering ``n_steps`` steps with half-width ``window`` and ``stride`` kept steps
    each, in order (a generator: constant memory for any movie length)."""
    if window < 0:
        raise DBlinkError(f"--window must be >= 0 steps, got {window}")
    if stride < 1:
        raise DBlinkError(f"--stride must be >= 1, got {stride}")
    delta = confidence_shift(window, stride)
    for b in range(0, n_steps, stride):
        keep = tuple(range(b, min(b + stride, n_steps)))
        start, stop = max(0, keep[0] - window), min(n_steps, keep[-1] + window + 1)
        alt: tuple[int, ...] = ()
        if confidence and delta > 0:
            cand = sorted({p + s for p in keep for s in (-delta, delta)})
            alt = tuple(a for a in cand if start <= a < stop and a not in keep)
        yield Window(start, stop, keep, alt)


def plan_windows(n_steps: int, window: int, stride: int = 1, confidence: bool = False) -> list[Window]:
    """:func:`iter_windows` as a list (for tests and small movies)."""
    return list(iter_windows(n_steps, window, stride, confidence))


def iter_batches(windows: Iterable[Window], batch: int) -> Iterator[list[Window]]:
    """Consecutive windows of one signature, at most ``batch`` per network call. The same batches
    for the whole movie whatever the time chunks, so that chunks compute exactly what one pass
    would."""
    for _, group in groupby(windows, key=lambda w: w.signature):
        while True:
            part = list(islice(group, max(1, batch)))
            if not part:
                break
            yield part


def plan_batches(windows: list[Window], batch: int) -> list[list[Window]]:
    """:func:`iter_batches` as a list."""
    return list(iter_batches(windows, batch))


def confidence(y: np.ndarray, estimates: list[np.ndarray]) -> np.ndarray:
    """``1 − RMS(estimate − y)`` over the alternate estimates, clipped to [0, 1]; NaN without any."""
    if not estimates:
        return np.full(y.shape, np.nan, dtype=np.float32)
    msd = sum((e - y) ** 2 for e in estimates) / np.float32(len(estimates))
    return np.clip(1 - np.sqrt(msd), 0, 1).astype(np.float32, copy=False)
