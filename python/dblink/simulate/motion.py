"""Time-varying motion of a structure: rotation, drift and a smooth bending deformation.

All parameters are per raw frame; positions are nm relative to the field centre.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Motion:
    """Per-raw-frame rigid motion plus a smooth deformation.

    angle[f] (rad) and shift[f] (nm, (x, y)) for 0-based raw frame f; the deformation displaces a
    point p by ``amp[f] * sin(k · p + phase)`` along ``direction`` (one low-frequency mode).
    """

    angle: np.ndarray
    shift: np.ndarray
    amp: np.ndarray
    k: np.ndarray
    phase: float
    direction: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator, n_frames: int, drift_nm: float, rotation_deg: float,
               deform_nm: float) -> "Motion":
        """Smooth random motion over ``n_frames``: total drift up to ``drift_nm``, total rotation up to
        ``rotation_deg``, bending amplitude up to ``deform_nm``, each with a gentle wobble."""
        t = np.linspace(0.0, 1.0, n_frames)
        def smooth_path(total: float) -> np.ndarray:
            # a linear trend plus one slow sinusoid; |path| <= total
            a, b = rng.uniform(-1, 1, 2)
            return total * (0.7 * a * t + 0.3 * b * np.sin(2 * np.pi * (t * rng.uniform(0.3, 1.5)
                                                                         + rng.uniform())))
        angle = np.deg2rad(smooth_path(rotation_deg))
        shift = np.column_stack([smooth_path(drift_nm), smooth_path(drift_nm)])
        amp = deform_nm * np.sin(np.pi * t * rng.uniform(0.5, 2.0) + rng.uniform(0, np.pi))
        wavelength = rng.uniform(1500.0, 5000.0)
        theta = rng.uniform(0, 2 * np.pi)
        k = 2 * np.pi / wavelength * np.array([np.cos(theta), np.sin(theta)])
        d = rng.uniform(0, 2 * np.pi)
        return cls(angle, shift, amp, k, float(rng.uniform(0, 2 * np.pi)),
                   np.array([np.cos(d), np.sin(d)]))

    def apply(self, points: np.ndarray, frames: np.ndarray | int) -> np.ndarray:
        """Positions of structure ``points`` (N, 2) at 0-based raw ``frames`` (scalar or (N,))."""
        a = self.angle[frames]
        c, s = np.cos(a), np.sin(a)
        x, y = points[:, 0], points[:, 1]
        bend = self.amp[frames] * np.sin(points @ self.k + self.phase)
        out = np.empty_like(points)
        out[:, 0] = c * x - s * y + self.shift[frames, 0] + bend * self.direction[0]
        out[:, 1] = s * x + c * y + self.shift[frames, 1] + bend * self.direction[1]
        return out
