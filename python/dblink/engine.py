"""Windowed inference: the paper's sliding-window reconstruction, without its waste.

For every output step t the network sees the window of steps [t − W, t + W] (clipped at the movie
ends) and its output at t is kept. The original code decoded every step of each window and kept the
centre; here the head decodes only the kept steps, windows of equal shape run as one batch, and with
``stride`` K one window keeps its K central steps (K = 1 is the paper's exact mode).

Confidence: every window also decodes the steps δ = max(K, ⌈W/2⌉) before and after its kept ones.
Each step t thus gets up to two more estimates from windows shifted by ±δ steps (which see a
different stretch of the movie around t). The confidence is ``1 − RMS(estimate − kept output)``,
clipped to [0, 1]: 1 where the reconstruction does not depend on the window's placement, low where
it does (motion ambiguity, few localizations, hallucination risk). It costs extra head evaluations;
``confidence=False`` skips it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import torch

from .errors import DBlinkError
from .progress import Progress, ProgressSpec


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


def plan_windows(n_steps: int, window: int, stride: int = 1, confidence: bool = False) -> list[Window]:
    """Windows covering ``n_steps`` steps with half-width ``window`` and ``stride`` kept steps each."""
    if window < 0:
        raise DBlinkError(f"--window must be >= 0 steps, got {window}")
    if stride < 1:
        raise DBlinkError(f"--stride must be >= 1, got {stride}")
    delta = min(window, max(stride, math.ceil(window / 2)))
    out = []
    for b in range(0, n_steps, stride):
        keep = tuple(range(b, min(b + stride, n_steps)))
        start, stop = max(0, keep[0] - window), min(n_steps, keep[-1] + window + 1)
        alt: tuple[int, ...] = ()
        if confidence and delta > 0:
            cand = sorted({p + s for p in keep for s in (-delta, delta)})
            alt = tuple(a for a in cand if start <= a < stop and a not in keep)
        out.append(Window(start, stop, keep, alt))
    return out


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA if present, else Apple MPS, else CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DBlinkError("--device cuda: no CUDA GPU is visible to PyTorch "
                          f"(torch {torch.__version__}); use --device cpu or auto")
    if device not in ("cpu", "cuda", "mps"):
        raise DBlinkError(f"--device must be auto, cpu, cuda or mps, not {device!r}")
    return torch.device(device)


@dataclass
class Reconstruction:
    """Output of :func:`infer`: arrays (T, H, W) float32 and how they were made."""

    video: np.ndarray
    confidence: np.ndarray | None
    seconds: float
    device: str
    n_windows: int


def _normalize_frames(y: torch.Tensor) -> torch.Tensor:
    """Per-frame min-max to [0, 1] over the last two axes (for unbounded model outputs)."""
    lo = y.amin(dim=(-2, -1), keepdim=True)
    hi = y.amax(dim=(-2, -1), keepdim=True)
    return (y - lo) / (hi - lo).clamp_min(1e-12)


def infer(video: np.ndarray, module: torch.nn.Module, window: int, stride: int = 1,
          device: str = "auto", batch: int = 4, confidence: bool = True,
          normalize: bool = False, progress: ProgressSpec = "bar") -> Reconstruction:
    """Reconstruct a localization-map video (T, H, W) with a DBlink network.

    Args:
        window: half-width W in steps; output t is computed from steps [t − W, t + W].
        stride: K kept central steps per window (1 = the paper's exact mode).
        batch: windows per network call.
        normalize: per-frame min-max of the output (models with unbounded outputs).
        progress: ``bar``, ``json`` or ``none``.
    """
    video = np.asarray(video, dtype=np.float32)
    if video.ndim != 3:
        raise DBlinkError(f"expected a video (T, H, W), got shape {video.shape}")
    T, H, W = video.shape
    if T == 0:
        raise DBlinkError("the video has no steps")
    dev = pick_device(device)
    module = module.to(dev).eval()
    windows = plan_windows(T, window, stride, confidence)
    x_all = torch.from_numpy(video)
    out = torch.zeros((T, H, W), dtype=torch.float32)
    s1 = torch.zeros_like(out) if confidence else None
    s2 = torch.zeros_like(out) if confidence else None
    n_alt = torch.zeros((T, 1, 1), dtype=torch.float32) if confidence else None
    t0 = time.perf_counter()
    with Progress(T, progress, desc="reconstruct") as bar, torch.inference_mode():
        for sig, group in groupby(windows, key=lambda w: w.signature):
            group = list(group)
            length, rel_keep, rel_alt = sig
            pos = torch.tensor(rel_keep + rel_alt, dtype=torch.long, device=dev)
            for i in range(0, len(group), max(1, batch)):
                chunk = group[i:i + batch]
                x = torch.stack([x_all[w.start:w.stop] for w in chunk]).to(dev, non_blocking=True)
                y = module(x, pos).float()
                if normalize:
                    y = _normalize_frames(y)
                y = y.cpu()
                nk = len(rel_keep)
                for j, w in enumerate(chunk):
                    out[list(w.keep)] = y[j, :nk]
                    if confidence and w.alt:
                        a = list(w.alt)
                        s1[a] += y[j, nk:]
                        s2[a] += y[j, nk:] ** 2
                        n_alt[a] += 1
                    bar.update(len(w.keep))
    conf = None
    if confidence:
        n = n_alt.clamp_min(1)
        msd = (s2 - 2 * out * s1 + n_alt * out ** 2) / n
        conf = (1 - msd.clamp_min(0).sqrt()).clamp(0, 1)
        conf = torch.where(n_alt > 0, conf, torch.full_like(conf, float("nan"))).numpy()
    return Reconstruction(video=out.numpy(), confidence=conf, seconds=time.perf_counter() - t0,
                          device=str(dev), n_windows=len(windows))


def reference_loop(video: np.ndarray, module: torch.nn.Module, window: int,
                   normalize: bool = False) -> np.ndarray:
    """The original DBlink algorithm, kept as the reference for tests and ``dblink bench``.

    For each output step t: run the whole network on the clipped window [t − W, t + W], decode every
    step of the window, keep the one at t. Slow by design.
    """
    T = video.shape[0]
    x_all = torch.from_numpy(np.asarray(video, dtype=np.float32))
    out = np.zeros(video.shape, dtype=np.float32)
    module = module.eval()
    with torch.inference_mode():
        for t in range(T):
            start, stop = max(0, t - window), min(T, t + window + 1)
            y = module(x_all[start:stop][None])[0]
            if normalize:
                y = _normalize_frames(y)
            out[t] = y[t - start].numpy()
    return out
