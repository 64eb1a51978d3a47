"""Quality measures against ground truth, and the classical baseline.

* Paper binarization (Saguy et al.): each frame normalized to [0, 255]; structure where > 100.
* Fidelity: share of true structure pixels marked as structure. Hallucination: share of
  background pixels marked as structure (both pooled over all frames).
* Precision / recall / F1 with a 1-pixel tolerance: a predicted pixel is correct when a true pixel
  lies within 1 pixel (8-neighbourhood), a true pixel is recovered when a predicted one does.
* Baseline: the sum of localizations over the same ±W steps, blurred by a 1-pixel Gaussian.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def binarize_paper(video: np.ndarray, level: float = 100.0) -> np.ndarray:
    """The paper's binarization: per frame, scale to [0, 255] (min-max), structure where > level."""
    v = np.asarray(video, dtype=np.float64)
    lo = v.min(axis=(-2, -1), keepdims=True)
    hi = v.max(axis=(-2, -1), keepdims=True)
    scaled = (v - lo) / np.where(hi > lo, hi - lo, 1.0) * 255.0
    return scaled > level


def _dilate(mask: np.ndarray) -> np.ndarray:
    """1-pixel (8-neighbourhood) dilation of each frame."""
    return ndimage.binary_dilation(mask, structure=np.ones((1, 3, 3), bool)[-mask.ndim:] if
                                   mask.ndim == 3 else np.ones((3, 3), bool))


def scores(pred_mask: np.ndarray, gt: np.ndarray) -> dict:
    """Fidelity, hallucination, precision, recall and F1 (±1 px) of a binary prediction (T, H, W)."""
    p = np.asarray(pred_mask, bool)
    g = np.asarray(gt) > 0.5
    n_gt, n_bg = g.sum(), (~g).sum()
    fidelity = (p & g).sum() / n_gt if n_gt else float("nan")
    halluc = (p & ~g).sum() / n_bg if n_bg else float("nan")
    precision = (p & _dilate(g)).sum() / p.sum() if p.sum() else 0.0
    recall = (g & _dilate(p)).sum() / n_gt if n_gt else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"fidelity": float(fidelity), "hallucination": float(halluc),
            "precision": float(precision), "recall": float(recall), "f1": float(f1)}


def best_f1(pred: np.ndarray, gt: np.ndarray, levels: int = 24) -> tuple[float, float]:
    """The highest F1 (±1 px) over binarization levels 10…250 of 255: (F1, level).

    The paper's level (100) can be unfair to methods with another intensity profile (the summed
    baseline has bright clusters); this gives every method its best single level.
    """
    best = (0.0, 100.0)
    for level in np.linspace(10, 250, levels):
        f = scores(binarize_paper(pred, level), gt)["f1"]
        if f > best[0]:
            best = (f, float(level))
    return best


def evaluate_video(pred: np.ndarray, gt: np.ndarray, best_level: bool = False) -> dict:
    """All scores of a reconstruction (T, H, W) against ground truth (T, H, W), paper binarization;
    with ``best_level`` also ``f1_best`` (the F1 at the best binarization level)."""
    out = scores(binarize_paper(pred), gt)
    if best_level:
        out["f1_best"], out["f1_best_level"] = best_f1(pred, gt)
    return out


def baseline(video: np.ndarray, window: int, sigma_px: float = 1.0) -> np.ndarray:
    """Classical reconstruction: localizations summed over [t − W, t + W] (clipped), Gaussian-blurred."""
    v = np.asarray(video, dtype=np.float64)
    T = v.shape[0]
    c = np.concatenate([np.zeros((1,) + v.shape[1:]), np.cumsum(v, axis=0)])
    t = np.arange(T)
    lo, hi = np.maximum(0, t - window), np.minimum(T, t + window + 1)
    summed = c[hi] - c[lo]
    return ndimage.gaussian_filter(summed, sigma=(0, sigma_px, sigma_px)).astype(np.float32)


#: the classical baselines of issue 12: sums over ±5 and ±25 steps, each at its best level
BASELINE_WINDOWS = (5, 25)


def best_baseline(video: np.ndarray, gt: np.ndarray, windows: tuple[int, ...] = BASELINE_WINDOWS,
                  levels: int = 24) -> dict:
    """The best classical reconstruction of a localization-map video (T, H, W): the sum over ±W
    steps (1 px blur) for each W in ``windows``, binarized at each level 10…250; returns the scores
    (fidelity, hallucination, precision, recall, f1) of the (W, level) with the highest F1 (±1 px),
    with ``window`` and ``level``."""
    best: dict = {"f1": -1.0}
    for w in windows:
        summed = baseline(video, w)
        for level in np.linspace(10, 250, levels):
            s = scores(binarize_paper(summed, level), gt)
            if s["f1"] > best["f1"]:
                best = dict(s, window=int(w), level=float(level))
    return best
