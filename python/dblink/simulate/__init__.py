"""Simulated SMLM movies with ground truth, for training, evaluation and the demo.

``simulate_movie(config, seed)`` gives a ThunderSTORM-like localization table (nm, 1-based frames,
camera field with its top-left corner at (0, 0)) and the ground-truth structure video on the render
grid at the step rate (each step shows the structure at the middle raw frame of the step).

Three domains (``SimConfig.domain``) produce the same kind of result:

* ``ours`` — dblink's own simulator: structures in nm, blinking emitters with Gaussian jitter
  (:mod:`.blinking`);
* ``paper`` — the statistics of the original DBlink simulator (:mod:`.paper`);
* ``camera`` — our structures and motion, imaged as camera frames and localized by a real
  detection + Gaussian fitting algorithm (:mod:`.camera`), with its misses, merges and biases.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..tables import Localizations
from ..render import Grid, render
from .blinking import blink, drift_residual
from .motion import Motion
from .mitochondria import Mitochondria
from .structures import StaticSites, filaments, label_sites

DOMAINS = ("ours", "paper", "camera")


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
    domain: str = "ours"             # ours | paper | camera (see the module docstring)
    width_nm: float = 0.0            # apparent filament width: FWHM of the labels' offsets from the
                                     # centreline (nm; 0 = on it); filaments of ours and camera
    label_spacing_nm: float = 0.0    # mean spacing of labelling sites along filaments (nm; 0 = 5 nm)
    drift_residual_nm: float = 0.0   # rms error of drift correction, shared by a raw frame's
                                     # localizations (nm; a slow random walk)
    emitter_fraction: float = 0.002  # paper: share of structure pixels that emit per raw frame
    noise_per_frame: int = 4         # paper: 0 … this many uniform noise localizations per raw frame
    photons: float = 1500.0          # camera: mean photons of an emitter in a whole raw frame
    background: float = 40.0         # camera: background photons per camera pixel and raw frame
    camera: str = "emccd"            # camera: emccd or scmos
    camera_pixel_nm: float = 100.0   # camera: camera pixel size (nm)
    psf_sigma_nm: float = 110.0      # camera: standard deviation of the Gaussian PSF (nm)

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


def _structure_and_motion(rng: np.random.Generator, config: SimConfig):
    """Draw the structure, its motion and its labels.

    Returns (n_truth, truth, n_sites, where): ``truth(idx, frames)`` gives positions (nm from the
    field centre) of the structure's points at 0-based raw ``frames`` (the ground truth), and
    ``where(idx, frames)`` those of its labelling sites (off the centreline by ``width_nm``)."""
    w, h = config.field_nm
    margin = 1.5 * (config.drift_nm + 200.0)
    if config.sample == "filaments":
        points = filaments(rng, (w + margin, h + margin), config.n_structures,
                           bend_sd_rad=config.bend_sd_rad)
        # keep only points that can enter the field (rotation about the centre, drift, bending)
        reach = math.hypot(w, h) / 2 + config.drift_nm + config.deform_nm + 100.0
        points = points[np.hypot(points[:, 0], points[:, 1]) < reach]
        structure = StaticSites(points)
    elif config.sample == "mitochondria":
        structure = Mitochondria.random(rng, (w, h), config.n_structures, config.n_frames)
    else:
        raise ValueError(f"unknown sample {config.sample!r} (filaments or mitochondria)")
    motion = Motion.random(rng, config.n_frames, config.drift_nm, config.rotation_deg,
                           config.deform_nm)
    # labelled sites: the ground truth stays the centreline, the emitters sit beside it
    sites = structure
    if config.sample == "filaments" and (config.width_nm > 0 or config.label_spacing_nm > 0):
        sites = StaticSites(label_sites(rng, structure.points, config.width_nm,
                                        config.label_spacing_nm))

    def truth(idx: np.ndarray, frames: np.ndarray | int) -> np.ndarray:
        return motion.apply(structure.sites_at(idx, frames), frames)

    def where(idx: np.ndarray, frames: np.ndarray | int) -> np.ndarray:
        return motion.apply(sites.sites_at(idx, frames), frames)

    return structure.n_sites, truth, sites.n_sites, where


def _ground_truth(config: SimConfig, grid: Grid, n: int, truth) -> np.ndarray:
    w, h = config.field_nm
    S = config.frames_per_step
    return np.stack([_rasterize(truth(np.arange(n), k * S + S // 2) + [w / 2, h / 2], grid)
                     for k in range(config.n_steps)])


def simulate_movie(config: SimConfig, seed: int | np.random.SeedSequence | list = 0) -> SimResult:
    """Simulate one movie of ``config.domain``. The same config and seed give the same movie."""
    if config.domain == "paper":
        return _simulate_paper(config, seed)
    if config.domain == "camera":
        from .camera import simulate_camera
        return simulate_camera(config, seed)
    if config.domain != "ours":
        raise ValueError(f"unknown domain {config.domain!r} (choose from {', '.join(DOMAINS)})")
    rng = np.random.default_rng(seed)
    w, h = config.field_nm
    n_truth, truth, n, where = _structure_and_motion(rng, config)
    # density is per µm² of the field: emitters on structure outside the field are lost, so draw more
    mid = where(np.arange(n), config.n_frames // 2)
    share = np.mean((np.abs(mid[:, 0]) < w / 2) & (np.abs(mid[:, 1]) < h / 2)) if n else 1.0
    frames, x, y, unc = blink(rng, n, where, config.n_frames, (w, h),
                              config.density / max(share, 0.05),
                              config.jitter_nm, config.mean_on_frames,
                              config.false_fraction, config.bleach)
    if config.drift_residual_nm > 0:
        off = drift_residual(rng, config.n_frames, config.drift_residual_nm)
        x, y = x + off[frames, 0], y + off[frames, 1]
    cx, cy = w / 2, h / 2
    inside = (x + cx >= 0) & (x + cx < w) & (y + cy >= 0) & (y + cy < h)
    locs = Localizations(frame=frames[inside] + 1, x=x[inside] + cx, y=y[inside] + cy,
                         uncertainty=unc[inside], source=f"simulated {config.sample} seed={seed}",
                         units={"x": "nm", "y": "nm"})
    grid = Grid(0.0, 0.0, w, h, config.pixel_size)
    gt = _ground_truth(config, grid, n_truth, truth)
    return SimResult(locs=locs, gt=gt, grid=grid, config=config,
                     seed=seed if isinstance(seed, int) else 0)


def _simulate_paper(config: SimConfig, seed) -> SimResult:
    """The ``paper`` domain (see :mod:`.paper`): localizations at render-pixel centres."""
    from .paper import paper_filaments_gt, paper_localizations, paper_mitochondria_gt

    rng = np.random.default_rng(seed)
    w, h = config.field_nm
    p = config.pixel_size
    shape = (config.height_px, config.width_px)
    if config.sample == "filaments":
        gt = paper_filaments_gt(rng, shape, p, config.n_structures, config.n_steps,
                                config.frames_per_step, config.drift_nm, config.rotation_deg)
    elif config.sample == "mitochondria":
        speed = config.drift_nm / p / max(config.n_frames, 1)
        gt = paper_mitochondria_gt(rng, shape, config.n_structures, config.n_steps,
                                   config.frames_per_step, speed)
    else:
        raise ValueError(f"unknown sample {config.sample!r} (filaments or mitochondria)")
    fr, r, c = paper_localizations(rng, gt, config.frames_per_step, config.emitter_fraction,
                                   config.noise_per_frame)
    x, y = (c + 0.5) * p, (r + 0.5) * p
    if config.drift_residual_nm > 0:
        off = drift_residual(rng, config.n_frames, config.drift_residual_nm)
        x, y = x + off[fr, 0], y + off[fr, 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    locs = Localizations(frame=fr[inside] + 1, x=x[inside], y=y[inside],
                         uncertainty=np.full(int(inside.sum()), p / 2),
                         source=f"simulated paper-domain {config.sample} seed={seed}",
                         units={"x": "nm", "y": "nm"})
    return SimResult(locs=locs, gt=gt.astype(np.float32), grid=Grid(0.0, 0.0, w, h, p),
                     config=config, seed=seed if isinstance(seed, int) else 0)


@dataclass
class SimRanges:
    """Ranges that training draws each movie's settings from (uniform; log-uniform for density and
    the paper domain's emitter fraction).

    The settings added for issue 12 (widths, labelling, drift residuals, static and slow clips,
    the paper and camera domains) are drawn only when their range is not the default, so older
    configs draw exactly the movies they drew before."""

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
    static_fraction: float = 0.0          # share of clips without any motion
    slow_fraction: float = 0.0            # share of clips with a tenth of the drawn motion
    width_nm: tuple[float, float] = (0.0, 0.0)
    label_spacing_nm: tuple[float, float] = (0.0, 0.0)
    drift_residual_nm: tuple[float, float] = (0.0, 0.0)
    emitter_fraction: tuple[float, float] = (0.001, 0.006)   # paper domain
    noise_per_frame: tuple[int, int] = (4, 4)                # paper domain
    photons: tuple[float, float] = (300.0, 5000.0)           # camera domain (log-uniform)
    background: tuple[float, float] = (10.0, 150.0)          # camera domain
    camera_pixel_nm: tuple[float, float] = (100.0, 160.0)    # camera domain
    psf_sigma_nm: tuple[float, float] = (90.0, 140.0)        # camera domain
    scmos_fraction: float = 0.5                              # camera domain: share of sCMOS

    def draw(self, rng: np.random.Generator, base: SimConfig) -> SimConfig:
        """A random config within these ranges (other fields from ``base``)."""
        lo, hi = self.density
        cfg = replace(
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
        return self._draw_extra(rng, cfg)

    def _draw_extra(self, rng: np.random.Generator, cfg: SimConfig) -> SimConfig:
        """The issue-12 settings, each drawn only when enabled (keeps old streams unchanged)."""
        changes: dict = {}
        if self.static_fraction or self.slow_fraction:
            u = rng.random()
            scale = 0.0 if u < self.static_fraction else (
                0.1 if u < self.static_fraction + self.slow_fraction else 1.0)
            changes.update(drift_nm=cfg.drift_nm * scale, rotation_deg=cfg.rotation_deg * scale,
                           deform_nm=cfg.deform_nm * scale)
        for name in ("width_nm", "label_spacing_nm", "drift_residual_nm"):
            lo, hi = getattr(self, name)
            if hi > 0:
                changes[name] = float(rng.uniform(lo, hi))
        if cfg.domain == "paper":
            lo, hi = self.emitter_fraction
            changes["emitter_fraction"] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            changes["noise_per_frame"] = int(rng.integers(self.noise_per_frame[0],
                                                          self.noise_per_frame[1] + 1))
        elif cfg.domain == "camera":
            lo, hi = self.photons
            changes.update(photons=float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
                           background=float(rng.uniform(*self.background)),
                           camera_pixel_nm=float(rng.uniform(*self.camera_pixel_nm)),
                           psf_sigma_nm=float(rng.uniform(*self.psf_sigma_nm)),
                           camera="scmos" if rng.random() < self.scmos_fraction else "emccd")
        return replace(cfg, **changes)


__all__ = ["DOMAINS", "SimConfig", "SimRanges", "SimResult", "simulate_movie"]
