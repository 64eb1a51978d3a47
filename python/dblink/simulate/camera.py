"""The ``camera`` domain: our structures and motion imaged as camera frames, then localized.

An emitter switches on at a random raw frame and stays on for a geometric number of frames (mean
``mean_on_frames``; the first and last frames only partly), emitting ``photons`` per whole frame
(log-normal spread between emitters). A share ``false_fraction`` of the emitters are non-specific
(uniform over the field). Each frame is the integrated Gaussian PSF of the emitters that are on,
plus a uniform ``background``, with shot noise and camera noise:

* ``emccd``: electron multiplication (gain register: Gamma-distributed output, excess noise
  factor √2) and read noise of 0.3 photon equivalents;
* ``scmos``: read noise of 1.6 electrons per pixel.

The frames are then localized by :func:`.localize.localize` (detection + least-squares Gaussian
fit), so the table carries missed and merged detections, photon-dependent precision and fitting
bias. Localization is slower than sampling, so tables are cached on disk (``$DBLINK_CACHE``, default
``~/.cache/dblink``; ``DBLINK_CACHE=off`` disables it), keyed by the settings and the seed: the same
config and seed give the same movie whether cached or not.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import erf

from ..render import Grid
from ..tables import Localizations

if TYPE_CHECKING:  # simulate/__init__ imports this module
    from . import SimResult
from .localize import localize

#: bump when the camera model or the localizer changes what a seed produces
CAMERA_VERSION = 1
PATCH_HALF = 4  # PSF rendered over ±4 camera pixels


def cache_dir() -> Path | None:
    """Where camera tables are cached, or None when caching is off."""
    env = os.environ.get("DBLINK_CACHE", "")
    if env.lower() in ("off", "0", "none"):
        return None
    return Path(env) if env else Path.home() / ".cache" / "dblink"


def _cache_key(config_dict: dict, seed) -> str:
    if isinstance(seed, np.random.SeedSequence):
        seed = [seed.entropy, list(seed.spawn_key)]
    text = json.dumps({"v": CAMERA_VERSION, "config": config_dict, "seed": seed}, sort_keys=True,
                      default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def emitter_events(rng: np.random.Generator, n_sites: int, n_frames: int, area_um2: float,
                   density: float, mean_on_frames: float, photons: float, bleach: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """On-frames of blinking emitters: (frame 0-based, site, photons in that frame).

    ``density`` is emitters on per µm² per raw frame (before detection)."""
    mean_on = max(mean_on_frames, 1.0)
    n_ev = rng.poisson(density * area_um2 * n_frames / mean_on) if n_sites else 0
    t = np.arange(n_frames)
    profile = np.clip(1.0 - bleach * t / max(1, n_frames - 1), 0.05, None)
    birth = rng.choice(n_frames, size=n_ev, p=profile / profile.sum())
    dur = rng.geometric(1.0 / mean_on, size=n_ev)
    site = rng.integers(0, max(n_sites, 1), n_ev)
    brightness = photons * rng.lognormal(0.0, 0.4, n_ev)
    ev = np.repeat(np.arange(n_ev), dur)
    k = np.arange(ev.size) - np.repeat(np.cumsum(dur) - dur, dur)
    frames = birth[ev] + k
    share = np.ones(ev.size)
    first, last = k == 0, k == dur[ev] - 1
    share[first] = rng.uniform(0.1, 1.0, int(first.sum()))        # switched on during the frame
    share[last & ~first] = rng.uniform(0.1, 1.0, int((last & ~first).sum()))
    ok = frames < n_frames
    return frames[ok], site[ev][ok], (brightness[ev] * share)[ok]


def camera_frames(rng: np.random.Generator, frames: np.ndarray, xy_nm: np.ndarray,
                  photons: np.ndarray, n_frames: int, shape: tuple[int, int], pixel_nm: float,
                  psf_sigma_nm: float, background: float, camera: str) -> np.ndarray:
    """Noisy camera frames (F, H, W) in photon units: integrated Gaussian PSFs + background,
    Poisson shot noise and EMCCD or sCMOS camera noise."""
    H, W = shape
    img = np.full((n_frames, H, W), float(background))
    if len(frames):
        u, v = xy_nm[:, 0] / pixel_nm, xy_nm[:, 1] / pixel_nm
        s = psf_sigma_nm / pixel_nm * np.sqrt(2)
        off = np.arange(-PATCH_HALF, PATCH_HALF + 1)
        cx = np.floor(u).astype(np.int64)[:, None] + off[None]
        cy = np.floor(v).astype(np.int64)[:, None] + off[None]
        ex = 0.5 * (erf((cx + 1 - u[:, None]) / s) - erf((cx - u[:, None]) / s))
        ey = 0.5 * (erf((cy + 1 - v[:, None]) / s) - erf((cy - v[:, None]) / s))
        val = photons[:, None, None] * ey[:, :, None] * ex[:, None, :]
        fr = np.broadcast_to(frames[:, None, None], val.shape)
        rr = np.broadcast_to(cy[:, :, None], val.shape)
        cc = np.broadcast_to(cx[:, None, :], val.shape)
        ok = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
        np.add.at(img, (fr[ok], rr[ok], cc[ok]), val[ok])
    e = rng.poisson(img).astype(np.float64)
    if camera == "emccd":
        out = np.where(e > 0, rng.gamma(np.maximum(e, 1e-9)), 0.0)  # gain register, in photons
        return (out + rng.normal(0.0, 0.3, e.shape)).astype(np.float32)
    if camera == "scmos":
        return (e + rng.normal(0.0, 1.6, e.shape)).astype(np.float32)
    raise ValueError(f"unknown camera {camera!r} (emccd or scmos)")


def _camera_table(rng: np.random.Generator, config, n: int, where) -> dict:
    """Simulate the frames of one movie and localize them (table columns, nm, 0-based frames)."""
    w, h = config.field_nm
    cp = config.camera_pixel_nm
    shape = (int(np.ceil(h / cp)), int(np.ceil(w / cp)))
    F = config.n_frames
    # density is per µm² of the field: emitters on structure outside the field are lost, so draw more
    mid = where(np.arange(n), F // 2) if n else np.zeros((0, 2))
    share = np.mean((np.abs(mid[:, 0]) < w / 2) & (np.abs(mid[:, 1]) < h / 2)) if n else 1.0
    dens_true = config.density * (1 - config.false_fraction) / max(share, 0.05)
    fr, site, ph = emitter_events(rng, n, F, w * h / 1e6, dens_true, config.mean_on_frames,
                                  config.photons, config.bleach)
    xy = where(site, fr) + [w / 2, h / 2] if len(fr) else np.zeros((0, 2))
    n_false = rng.poisson(config.density * config.false_fraction * w * h / 1e6 * F
                          / max(config.mean_on_frames, 1.0))
    if n_false:  # non-specific emitters: fixed spots anywhere, blinking like the rest
        spots = rng.uniform([0, 0], [w, h], (max(1, n_false // 3), 2))
        ffr, fsite, fph = emitter_events(rng, len(spots), F, w * h / 1e6,
                                         config.density * config.false_fraction,
                                         config.mean_on_frames, config.photons, 0.0)
        fr, xy, ph = np.concatenate([fr, ffr]), np.concatenate([xy, spots[fsite]]), np.concatenate([ph, fph])
    movie = camera_frames(rng, fr, xy, ph, F, shape, cp, config.psf_sigma_nm, config.background,
                          config.camera)
    return localize(movie, cp, config.psf_sigma_nm, config.camera == "emccd")


def simulate_camera(config, seed) -> SimResult:
    """One ``camera``-domain movie (see the module docstring); cached tables are reused."""
    from . import SimResult, _ground_truth, _structure_and_motion
    from .blinking import drift_residual

    rng = np.random.default_rng(seed)
    w, h = config.field_nm
    n_truth, truth, n, where = _structure_and_motion(rng, config)
    grid = Grid(0.0, 0.0, w, h, config.pixel_size)
    gt = _ground_truth(config, grid, n_truth, truth)
    folder = cache_dir()
    path = folder / "camera" / f"{_cache_key(config.to_dict(), seed)}.npz" if folder else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            table = {k: z[k] for k in z.files}
    else:
        table = _camera_table(rng, config, n, where)
        if config.drift_residual_nm > 0:
            off = drift_residual(rng, config.n_frames, config.drift_residual_nm)
            table["x"] = table["x"] + off[table["frame"], 0]
            table["y"] = table["y"] + off[table["frame"], 1]
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez_compressed(tmp, **table)
            tmp.replace(path)
    x, y = table["x"], table["y"]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    order = np.argsort(table["frame"][inside], kind="stable")
    locs = Localizations(frame=table["frame"][inside][order] + 1, x=x[inside][order],
                         y=y[inside][order], uncertainty=table["uncertainty"][inside][order],
                         source=f"simulated camera-domain {config.sample} seed={seed}",
                         units={"x": "nm", "y": "nm"})
    return SimResult(locs=locs, gt=gt, grid=grid, config=config,
                     seed=seed if isinstance(seed, int) else 0)
