"""Blinking localizations on a moving structure, vectorised over all raw frames.

An emitter switches on at a random raw frame and stays on for a geometric number of frames (mean
``mean_on_frames``); a few emitters stay on much longer (clusters of repeated localizations). The
rate of switching on decays with photobleaching and fluctuates slowly. Each localization is the
emitter's position at that frame plus Gaussian jitter whose size varies per emitter (as photon
counts do). False localizations fall uniformly over the field, some as sticky clusters.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def blink(rng: np.random.Generator, n_sites: int, where: Callable[[np.ndarray, np.ndarray], np.ndarray],
          n_frames: int, field_nm: tuple[float, float], density: float, jitter_nm: float,
          mean_on_frames: float, false_fraction: float, bleach: float, cluster_fraction: float = 0.02
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Simulate localizations.

    Args:
        n_sites: number of labelling sites, evenly spread over the structure.
        where: ``where(site_index, frame)`` → positions (N, 2), nm from the field centre, of the
            sites at those 0-based raw frames (the structure's own motion included).
        density: mean true localizations per µm² of field per raw frame.
        jitter_nm: median localization precision (nm).
        false_fraction: false localizations as a share of all localizations.
        bleach: fraction of the switching-on rate lost by the last frame (0 = none).

    Returns:
        frame (0-based), x, y (nm from the field centre), uncertainty (nm), for every localization.
    """
    w, h = field_nm
    area_um2 = w * h / 1e6
    t = np.arange(n_frames)
    profile = (1.0 - bleach * t / max(1, n_frames - 1)) * (
        1.0 + 0.3 * np.sin(2 * np.pi * (t / n_frames * rng.uniform(0.5, 3)) + rng.uniform(0, 6.3)))
    profile = np.clip(profile, 0.05, None)
    mean_locs = density * area_um2 * n_frames
    if n_sites == 0:
        mean_locs = 0.0
    # only the part of the structure inside the field contributes; scale by that share
    n_events = rng.poisson(mean_locs / max(mean_on_frames, 1.0))
    birth = rng.choice(n_frames, size=n_events, p=profile / profile.sum())
    dur = rng.geometric(1.0 / max(mean_on_frames, 1.0), size=n_events)
    long = rng.random(n_events) < cluster_fraction
    dur[long] = rng.integers(10, 40, size=int(long.sum()))
    which = rng.integers(0, max(n_sites, 1), size=n_events)
    sigma = jitter_nm * rng.lognormal(0.0, 0.3, size=n_events)
    ev = np.repeat(np.arange(n_events), dur)
    frames = birth[ev] + (np.arange(ev.size) - np.repeat(np.cumsum(dur) - dur, dur))
    ok = frames < n_frames
    ev, frames = ev[ok], frames[ok]
    pos = where(which[ev], frames) if ev.size else np.zeros((0, 2))
    pos = pos + rng.normal(size=pos.shape) * sigma[ev, None]
    unc = sigma[ev]
    # false localizations: uniform, a quarter of them in sticky clusters
    n_true = len(frames)
    n_false = rng.poisson(n_true * false_fraction / max(1e-6, 1 - false_fraction)) if false_fraction else 0
    n_sticky = n_false // 4
    fpos = rng.uniform([-w / 2, -h / 2], [w / 2, h / 2], size=(n_false, 2))
    if n_sticky:
        centres = rng.uniform([-w / 2, -h / 2], [w / 2, h / 2], size=(max(1, n_sticky // 15), 2))
        fpos[:n_sticky] = centres[rng.integers(0, len(centres), n_sticky)] + rng.normal(
            0, jitter_nm, (n_sticky, 2))
    ffr = rng.integers(0, n_frames, n_false)
    funcert = jitter_nm * rng.lognormal(0.0, 0.3, n_false)
    frames = np.concatenate([frames, ffr])
    pos = np.concatenate([pos, fpos])
    unc = np.concatenate([unc, funcert])
    order = np.argsort(frames, kind="stable")
    return frames[order], pos[order, 0], pos[order, 1], unc[order]


def drift_residual(rng: np.random.Generator, n_frames: int, rms_nm: float,
                   smooth_frames: float = 50.0) -> np.ndarray:
    """What drift correction leaves: a slow random walk (n_frames, 2) in nm, rms ``rms_nm`` per
    axis, smoothed over about ``smooth_frames`` raw frames; added to every localization of a frame."""
    from scipy.ndimage import gaussian_filter1d

    walk = np.cumsum(rng.normal(size=(n_frames, 2)), axis=0)
    walk = gaussian_filter1d(walk, smooth_frames, axis=0, mode="nearest")
    walk -= walk.mean(axis=0)
    rms = np.sqrt(np.mean(walk ** 2, axis=0))
    return walk * (rms_nm / np.where(rms > 0, rms, 1.0))
