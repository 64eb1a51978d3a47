"""Which steps each network run sees and keeps: windows, their batches, and the confidence.

For every output step t the network sees the window of steps [t − W, t + W] (clipped at the movie
ends) and its output at t is kept; with ``stride`` K one window keeps its K central steps (K = 1 is
the paper's exact mode). Windows are planned lazily: the plan of a movie of any length takes
constant memory.

Confidence: a window also decodes the steps δ = max(K, ⌈W/2⌉) before and after its kept ones
that are confidence *samples*. A sample s thus gets up to two more estimates from windows shifted
by ±δ steps
(which see a different stretch of the movie around s); their mean squared deviation from the kept
output, MSD(s), is interpolated linearly in time between samples, and the confidence is
``1 − sqrt(MSD)``, clipped to [0, 1]: 1 where the reconstruction does not depend on the window's
placement, low where it does (motion ambiguity, few localizations, hallucination risk). Samples
are every N-th step (``confidence_every``; by default N is δ, the time scale the measure has by
construction, rounded to a multiple of K so that the windows fall into two or three signatures:
K = 8, W = 25: N = 16): the head then decodes 1 + 2/N steps per output step instead of 3.
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


def confidence_every_default(window: int, stride: int) -> int:
    """N: the confidence is sampled every N steps, by default δ (:func:`confidence_shift`) rounded
    to the nearest multiple of the stride K (at least K): the samples then fall at the same place
    in every other window, so that windows come in few signatures and the network's answer to an
    empty window is reused (:meth:`.engine._Runner.cropped`; with N = δ = 13 and K = 8 the pattern
    repeats only every 13 windows)."""
    delta = max(1, confidence_shift(window, stride))
    return max(1, stride * max(1, round(delta / stride)))


def confidence_samples(n_steps: int, every: int) -> range:
    """The steps whose confidence is measured (the others are interpolated): every ``every``-th
    step, centred in its block of ``every`` steps (step 0 for a movie shorter than that)."""
    every = max(1, int(every))
    return range(min(every // 2, n_steps - 1), n_steps, every)


def iter_windows(n_steps: int, window: int, stride: int = 1, confidence: bool = False,
                 every: int = 1) -> Iterator[Window]:
    """Windows covering ``n_steps`` steps with half-width ``window`` and ``stride`` kept steps
    each, in order (a generator: constant memory for any movie length). With ``confidence``,
    each also decodes the alternates of its kept steps that are confidence samples (every
    ``every``-th step, :func:`confidence_samples`)."""
    if window < 0:
        raise DBlinkError(f"--window must be >= 0 steps, got {window}")
    if stride < 1:
        raise DBlinkError(f"--stride must be >= 1, got {stride}")
    delta = confidence_shift(window, stride)
    every = max(1, int(every))
    first = min(every // 2, n_steps - 1)
    for b in range(0, n_steps, stride):
        keep = tuple(range(b, min(b + stride, n_steps)))
        start, stop = max(0, keep[0] - window), min(n_steps, keep[-1] + window + 1)
        alt: tuple[int, ...] = ()
        if confidence and delta > 0:
            # estimates of the samples a = p ± δ: this window's view of a step δ from its own
            cand = sorted({a for p in keep for a in (p - delta, p + delta)
                           if a >= first and (a - first) % every == 0})
            alt = tuple(a for a in cand if start <= a < stop and a not in keep)
        yield Window(start, stop, keep, alt)


def plan_windows(n_steps: int, window: int, stride: int = 1, confidence: bool = False,
                 every: int = 1) -> list[Window]:
    """:func:`iter_windows` as a list (for tests and small movies)."""
    return list(iter_windows(n_steps, window, stride, confidence, every))


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


def deviation(y: np.ndarray, estimates: list[np.ndarray]) -> np.ndarray | None:
    """MSD: the mean squared deviation of the alternate estimates from ``y`` (None without any)."""
    if not estimates:
        return None
    return (sum((e - y) ** 2 for e in estimates) / np.float32(len(estimates))).astype(np.float32)


def confidence_from(msd: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``1 − sqrt(MSD)``, clipped to [0, 1]; NaN where no estimate exists."""
    if msd is None:
        return np.full(shape, np.nan, dtype=np.float32)
    return np.clip(1 - np.sqrt(msd), 0, 1).astype(np.float32, copy=False)


def confidence(y: np.ndarray, estimates: list[np.ndarray]) -> np.ndarray:
    """``1 − RMS(estimate − y)`` over the alternate estimates, clipped to [0, 1]; NaN without any."""
    return confidence_from(deviation(y, estimates), y.shape)


def interpolate(t: int, before: tuple[int, np.ndarray | None] | None,
                after: tuple[int, np.ndarray | None] | None) -> np.ndarray | None:
    """MSD at step ``t`` from the samples (step, MSD) around it: linear in time between the two,
    the nearer one alone at the movie's ends."""
    if before is None or after is None or before[0] == after[0]:
        one = before if after is None else after
        return None if one is None else one[1]
    (s0, m0), (s1, m1) = before, after
    if m0 is None or m1 is None:
        return m1 if m0 is None else m0
    w = np.float32((t - s0) / (s1 - s0))
    return (1 - w) * m0 + w * m1
