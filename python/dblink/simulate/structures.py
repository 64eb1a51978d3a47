"""Structures to simulate, as dense point sets in nm relative to the field centre.

Filaments follow the microtubule model of Shariff et al. (2010, Cytometry A): a random walk of
0.5-0.75 µm steps whose direction changes little from step to step (collinearity), 10 ± 5 µm long,
refined to a continuous curve by a cubic spline through the walk's vertices.
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

POINT_SPACING_NM = 5.0


def _resample(curve: np.ndarray, spacing: float) -> np.ndarray:
    seg = np.hypot(*np.diff(curve, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(s[-1] / spacing) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(t, s, curve[:, 0]), np.interp(t, s, curve[:, 1])])


def filament(rng: np.random.Generator, start: np.ndarray, length_nm: float,
             step_nm: tuple[float, float] = (500.0, 750.0), bend_sd_rad: float = 0.25,
             spacing_nm: float = POINT_SPACING_NM) -> np.ndarray:
    """One filament through ``start`` (nm): a collinear random walk refined by a cubic spline.

    The walk goes both ways from ``start`` so that the filament crosses the point. Returns points
    (N, 2) as (x, y) in nm, about ``spacing_nm`` apart along the curve.
    """
    n_steps = max(2, int(round(length_nm / np.mean(step_nm))))
    theta = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, bend_sd_rad, n_steps))
    steps = rng.uniform(*step_nm, n_steps)[:, None] * np.column_stack([np.cos(theta), np.sin(theta)])
    vertices = np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    vertices = vertices - vertices[rng.integers(0, n_steps // 2 + 1) + n_steps // 4] + start
    chord = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(vertices, axis=0).T))])
    spline = CubicSpline(chord, vertices, axis=0)
    dense = spline(np.linspace(0.0, chord[-1], max(8, int(chord[-1] / spacing_nm * 2))))
    return _resample(dense, spacing_nm)


def filaments(rng: np.random.Generator, field_nm: tuple[float, float], n: int,
              length_nm: tuple[float, float] = (10000.0, 5000.0), bend_sd_rad: float = 0.25,
              parallel_fraction: float = 0.2) -> np.ndarray:
    """``n`` filaments crossing a field of ``field_nm`` = (width, height), centred on (0, 0).

    Some filaments (``parallel_fraction``) are laid beside an earlier one, 80-300 nm apart, so
    that parallel bundles are seen too. Returns all points (N, 2) in nm.
    """
    w, h = field_nm
    out = []
    for i in range(n):
        length = max(2000.0, rng.normal(*length_nm))
        if out and rng.random() < parallel_fraction:
            base = out[rng.integers(len(out))]
            d = np.gradient(base, axis=0)
            normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.maximum(np.hypot(*d.T), 1e-9)[:, None]
            out.append(base + normal * rng.uniform(80, 300) * rng.choice([-1, 1]))
            continue
        start = rng.uniform([-0.45 * w, -0.45 * h], [0.45 * w, 0.45 * h])
        out.append(filament(rng, start, length, bend_sd_rad=bend_sd_rad))
    return np.concatenate(out) if out else np.zeros((0, 2))


class StaticSites:
    """Labelling sites that keep their place on the structure (filaments): the structure itself
    moves only through :class:`~dblink.simulate.motion.Motion`."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = points

    @property
    def n_sites(self) -> int:
        return len(self.points)

    def sites_at(self, idx: np.ndarray, frames: np.ndarray | int) -> np.ndarray:
        return self.points[idx]


def label_sites(rng: np.random.Generator, points: np.ndarray, width_nm: float,
                spacing_nm: float) -> np.ndarray:
    """Labelling sites of a filament drawn as ``points`` (every 5 nm along it).

    ``spacing_nm`` > 5 keeps each point with probability 5 / spacing (sparser labelling, so that
    emitters cluster at fewer sites); ``width_nm`` > 0 moves every site off the centreline by a
    Gaussian offset whose FWHM across the line is ``width_nm`` (antibodies, linkers: the apparent
    width). Returns sites (N, 2) in nm."""
    pts = points
    if spacing_nm > POINT_SPACING_NM:
        pts = pts[rng.random(len(pts)) < POINT_SPACING_NM / spacing_nm]
    if width_nm > 0:
        pts = pts + rng.normal(0.0, width_nm / 2.3548, pts.shape)
    return pts
