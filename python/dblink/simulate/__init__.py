"""Simulated SMLM movies with ground truth, for training, evaluation and the demo.

``simulate_movie(config, seed)`` gives a ThunderSTORM-like localization table (nm, 1-based frames,
camera field with its top-left corner at (0, 0)) and the ground-truth structure video on the render
grid at the step rate (each step shows the structure at the middle raw frame of the step).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..tables import Localizations
from ..render import Grid, render
from .blinking import blink
from .motion import Motion
from .mitochondria import Mitochondria
from .structures import StaticSites, filaments


@dataclass
class SimConfig:
    """Settings of one simulated movie. Lengths in nm, densities per µm² per raw frame."""

    sample: str = "filaments"
    height_px: int = 64              # render pixels
    width_px: int = 64
    pixel_size: float = 40.0         # nm per render pixel
    frames_per_step: int = 10        # raw frames per step
    n_steps: int = 64                # steps (time points of the output video)
    n_structures: int = 4            # filaments in the field
    bend_sd_rad: float = 0.25        # Shariff collinearity: sd of direction change per walk step
    density: float = 0.3             # true localizations per µm² per raw frame
    jitter_nm: float = 20.0          # median localization precision
    mean_on_frames: float = 2.0      # mean raw frames an emitter stays on
    false_fraction: float = 0.05     # share of localizations that are false
    bleach: float = 0.3              # share of the switching-on rate lost by the end
    drift_nm: float = 150.0          # total drift over the movie (nm)
    rotation_deg: float = 10.0       # total rotation over the movie (degrees)
    deform_nm: float = 40.0          # amplitude of the bending deformation (nm)

    @property
    def n_frames(self) -> int:
        return self.n_steps * self.frames_per_step

    @property
    def field_nm(self) -> tuple[float, float]:
        return (self.width_px * self.pixel_size, self.height_px * self.pixel_size)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SimResult:
    """A simulated movie: localizations (camera coordinates, nm) and ground truth (T, H, W)."""

    locs: Localizations
    gt: np.ndarray
    grid: Grid
    config: SimConfig
    seed: int = 0

    def render(self) -> np.ndarray:
        """The localization-map video (T, H, W) on the ground truth's grid."""
        return render(self.locs, self.grid, self.config.frames_per_step,
                      n_steps=self.config.n_steps).video


def _rasterize(points: np.ndarray, grid: Grid) -> np.ndarray:
    H, W = grid.shape
    c = np.floor((points[:, 0] - grid.x0) / grid.pixel_size).astype(np.int64)
    r = np.floor((points[:, 1] - grid.y0) / grid.pixel_size).astype(np.int64)
    ok = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    img = np.zeros(H * W, dtype=np.float32)
    img[r[ok] * W + c[ok]] = 1.0
    return img.reshape(H, W)


def simulate_movie(config: SimConfig, seed: int | np.random.SeedSequence | list = 0) -> SimResult:
    """Simulate one movie. The same config and seed give the same movie."""
    rng = np.random.default_rng(seed)
    w, h = config.field_nm
    margin = 1.5 * (config.drift_nm + 200.0)
    if config.sample == "filaments":
        points = filaments(rng, (w + margin, h + margin), config.n_structures,
                           bend_sd_rad=config.bend_sd_rad)
        # keep only points that can enter the field (rotation about the centre, drift, bending)
        reach = math.hypot(w, h) / 2 + config.drift_nm + config.deform_nm + 100.0
        structure = StaticSites(points[np.hypot(points[:, 0], points[:, 1]) < reach])
    elif config.sample == "mitochondria":
        structure = Mitochondria.random(rng, (w, h), config.n_structures, config.n_frames)
    else:
        raise ValueError(f"unknown sample {config.sample!r} (filaments or mitochondria)")
    motion = Motion.random(rng, config.n_frames, config.drift_nm, config.rotation_deg,
                           config.deform_nm)

    def where(idx: np.ndarray, frames: np.ndarray | int) -> np.ndarray:
        return motion.apply(structure.sites_at(idx, frames), frames)

    n = structure.n_sites
    # density is per µm² of the field: emitters on structure outside the field are lost, so draw more
    mid = where(np.arange(n), config.n_frames // 2)
    share = np.mean((np.abs(mid[:, 0]) < w / 2) & (np.abs(mid[:, 1]) < h / 2)) if n else 1.0
    frames, x, y, unc = blink(rng, n, where, config.n_frames, (w, h),
                              config.density / max(share, 0.05),
                              config.jitter_nm, config.mean_on_frames,
                              config.false_fraction, config.bleach)
    cx, cy = w / 2, h / 2
    inside = (x + cx >= 0) & (x + cx < w) & (y + cy >= 0) & (y + cy < h)
    locs = Localizations(frame=frames[inside] + 1, x=x[inside] + cx, y=y[inside] + cy,
                         uncertainty=unc[inside], source=f"simulated {config.sample} seed={seed}",
                         units={"x": "nm", "y": "nm"})
    grid = Grid(0.0, 0.0, w, h, config.pixel_size)
    S = config.frames_per_step
    gt = np.stack([_rasterize(where(np.arange(n), k * S + S // 2) + [cx, cy], grid)
                   for k in range(config.n_steps)])
    return SimResult(locs=locs, gt=gt, grid=grid, config=config,
                     seed=seed if isinstance(seed, int) else 0)


@dataclass
class SimRanges:
    """Ranges that training draws each movie's settings from (uniform; log-uniform for density)."""

    n_structures: tuple[int, int] = (1, 7)
    bend_sd_rad: tuple[float, float] = (0.1, 0.4)
    density: tuple[float, float] = (0.1, 1.0)
    jitter_nm: tuple[float, float] = (8.0, 35.0)
    mean_on_frames: tuple[float, float] = (1.0, 4.0)
    false_fraction: tuple[float, float] = (0.0, 0.2)
    bleach: tuple[float, float] = (0.0, 0.6)
    drift_nm: tuple[float, float] = (0.0, 500.0)
    rotation_deg: tuple[float, float] = (0.0, 40.0)
    deform_nm: tuple[float, float] = (0.0, 120.0)

    def draw(self, rng: np.random.Generator, base: SimConfig) -> SimConfig:
        """A random config within these ranges (other fields from ``base``)."""
        lo, hi = self.density
        return replace(
            base,
            n_structures=int(rng.integers(self.n_structures[0], self.n_structures[1] + 1)),
            bend_sd_rad=float(rng.uniform(*self.bend_sd_rad)),
            density=float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
            jitter_nm=float(rng.uniform(*self.jitter_nm)),
            mean_on_frames=float(rng.uniform(*self.mean_on_frames)),
            false_fraction=float(rng.uniform(*self.false_fraction)),
            bleach=float(rng.uniform(*self.bleach)),
            drift_nm=float(rng.uniform(*self.drift_nm)),
            rotation_deg=float(rng.uniform(*self.rotation_deg)),
            deform_nm=float(rng.uniform(*self.deform_nm)),
        )


__all__ = ["SimConfig", "SimRanges", "SimResult", "simulate_movie"]
