"""Resolution and consistency measures: FRC of localizations, decorrelation analysis of one image,
resolution over time of a reconstruction, temporal consistency of a video.

* **Fourier ring correlation** (Nieuwenhuizen et al., Nat Methods 2013; Banterle et al., J Struct
  Biol 2013): the localizations are split into two independent halves by *alternating blocks of raw
  frames* (block 0, 2, 4, … → half A; 1, 3, 5, … → half B). Blocks, not random localizations: an
  emitter's repeated localizations in consecutive frames of one burst stay in one half, so the halves
  do not share individual emitters' positions (which would make the FRC report the localization
  precision alone, too optimistically); alternating blocks keep both halves spread over the same time
  span, so drift and motion affect both alike. Each half is rendered as a static sum on the same fine
  grid, both are mean-subtracted and Tukey-windowed, and
  ``FRC(q) = Re Σ_ring F_A F_B* / sqrt(Σ_ring |F_A|² · Σ_ring |F_B|²)`` over rings one frequency bin
  wide. The curve is lightly smoothed (Gaussian, σ = 1 % of the rings, at least one ring) and the
  resolution is ``1 / q`` where it first drops below the fixed threshold 1/7 (linear interpolation
  between rings). No correction for spurious correlations is applied.
* **Decorrelation analysis** (Descloux, Grußmayer & Radenovic, Nat Methods 2019) of a single image:
  with ``I(k)`` the Fourier transform of the (mean-subtracted, edge-apodized) image and
  ``I_n = I/|I|`` its normalized phase, ``d(r) = Σ_{|k|≤r} Re(I·I_n*) / sqrt(Σ_{|k|≤1} |I|² ·
  Σ_{|k|≤r} |I_n|²)``, ``k`` in units of the Nyquist frequency (1 = 1 / (2 · pixel)). The local maximum
  ``(r_i, A_i)`` of ``d`` (followed by a fall of at least 1 %) is found for the image and for the image high-pass filtered with Gaussians
  (``1 − exp(−2π²σ²f²)``, ``f`` in cycles/pixel) of decreasing σ, then again with filters refined
  around the best one; ``k_c = max r_i`` and the resolution is ``2 · pixel / k_c``.
* **Over time** (``dblink resolution --over-time OUT.tif``): decorrelation analysis of every time
  point of a reconstruction, and optionally the FRC, per time point, of two reconstructions made
  from alternating halves of the localizations (each step's raw frames split into two blocks, so
  both halves cover every step): where the video is sharp and where it is not. Decorrelation of a
  reconstruction cannot report less than 2 render pixels (its Nyquist limit).
* **Temporal consistency** (DBlink paper): the mean normalized cross-correlation between consecutive
  frames of a reconstruction, after undoing a known translation of the sample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

from .errors import DBlinkError, first_line
from .tables import Localizations
from .render import Grid, render

#: FRC threshold (fixed 1/7)
FRC_THRESHOLD = 1.0 / 7.0
#: default render pixel for FRC, nm
FRC_PIXEL_NM = 10.0
#: largest FRC grid side, pixels (two complex FFTs of this size ≈ 0.5 GB)
MAX_FRC_SIDE = 4096
#: default number of frame blocks the time range is cut into for the split
FRC_BLOCKS = 20


# ----------------------------------------------------------------------------------------- FRC

@dataclass
class FRCResult:
    """An FRC curve and the resolution read from it.

    Attributes:
        frequency: ring centre frequencies, cycles per nm (ring 0, the mean, left out).
        frc: raw FRC per ring; ``smoothed``: the curve the threshold is applied to.
        resolution_nm: ``1 / q`` at the 1/7 crossing, nm; None when there is none (see ``note``).
        pixel_size: render pixel size, nm.
    """

    frequency: np.ndarray
    frc: np.ndarray
    smoothed: np.ndarray
    resolution_nm: float | None
    pixel_size: float
    threshold: float = FRC_THRESHOLD
    note: str = ""
    info: dict = field(default_factory=dict)


def _tukey(n: int, alpha: float = 0.25) -> np.ndarray:
    """A Tukey window of ``n`` samples (cosine tapers over ``alpha / 2`` of each end)."""
    w = np.ones(n)
    m = int(math.floor(alpha * (n - 1) / 2))
    if m > 0:
        t = np.arange(m + 1) / m
        taper = 0.5 * (1 - np.cos(np.pi * t))
        w[:m + 1] = taper
        w[n - m - 1:] = taper[::-1]
    return w


def _prepare(img: np.ndarray, alpha: float = 0.25) -> np.ndarray:
    """Mean-subtracted and Tukey-windowed copy (float64)."""
    f = np.asarray(img, dtype=np.float64)
    f = f - f.mean()
    return f * _tukey(f.shape[0], alpha)[:, None] * _tukey(f.shape[1], alpha)[None, :]


def frc_curve(a: np.ndarray, b: np.ndarray, pixel_size: float,
              threshold: float = FRC_THRESHOLD) -> FRCResult:
    """FRC of two images of the same field (H, W) with ``pixel_size`` nm pixels.

    Non-square images are zero-padded to a square (after windowing), so the rings are circles in
    frequency. Returns the curve over rings 1 … N/2 (N/2 = Nyquist) and the resolution in nm.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise DBlinkError(f"FRC needs two 2-D images of the same shape, got {a.shape} and {b.shape}")
    if min(a.shape) < 8:
        raise DBlinkError(f"FRC needs images of at least 8 x 8 pixels, got {a.shape[1]} x {a.shape[0]}")
    N = max(a.shape)
    pa, pb = np.zeros((N, N)), np.zeros((N, N))
    pa[:a.shape[0], :a.shape[1]] = _prepare(a)
    pb[:b.shape[0], :b.shape[1]] = _prepare(b)
    fa, fb = np.fft.rfft2(pa), np.fft.rfft2(pb)
    ky = np.fft.fftfreq(N) * N
    kx = np.fft.rfftfreq(N) * N
    ring = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64)
    # rfft2 holds the columns kx = 1 … N/2 - 1 once for two conjugate halves: weight them twice
    wt = np.full(kx.shape, 2.0)
    wt[0] = 1.0
    if N % 2 == 0:
        wt[-1] = 1.0
    wt = np.broadcast_to(wt[None, :], ring.shape)
    n_rings = N // 2 + 1
    keep = ring < n_rings

    def ring_sum(v: np.ndarray) -> np.ndarray:
        return np.bincount(ring[keep], weights=(v * wt)[keep], minlength=n_rings)

    num = ring_sum((fa * np.conj(fb)).real)
    den = np.sqrt(ring_sum(np.abs(fa) ** 2) * ring_sum(np.abs(fb) ** 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        frc = np.where(den > 0, num / den, 0.0)[1:]
    freq = np.arange(1, n_rings) / (N * pixel_size)
    sigma = max(1.0, 0.01 * len(frc))
    smoothed = ndimage.gaussian_filter1d(frc, sigma, mode="nearest")
    res, note = _crossing(freq, smoothed, threshold)
    return FRCResult(freq, frc, smoothed, res, float(pixel_size), threshold, note)


def _crossing(freq: np.ndarray, curve: np.ndarray, threshold: float) -> tuple[float | None, str]:
    """1 / (the frequency where ``curve`` first drops below ``threshold``), interpolated."""
    below = np.flatnonzero(curve < threshold)
    if len(below) == 0:
        return None, (f"the FRC stays above {threshold:.3g} up to the Nyquist frequency: the resolution "
                      f"is finer than {1 / freq[-1]:.3g} nm; use a smaller pixel size")
    i = int(below[0])
    if i == 0:
        return None, "the two halves do not correlate even at the lowest frequency (too few localizations?)"
    y0, y1 = curve[i - 1], curve[i]
    q = freq[i - 1] + (y0 - threshold) / (y0 - y1) * (freq[i] - freq[i - 1])
    return float(1.0 / q), ""


def split_halves(locs: Localizations, block_frames: int,
                 first_frame: int | None = None) -> tuple[Localizations, Localizations]:
    """Two halves by alternating blocks of ``block_frames`` raw frames (even blocks → A, odd → B)."""
    if not (isinstance(block_frames, (int, np.integer)) and block_frames >= 1):
        raise DBlinkError(f"the frame block must be a whole number >= 1, got {block_frames}")
    f0 = locs.frame_range[0] if first_frame is None else first_frame
    odd = ((locs.frame - f0) // block_frames) % 2 == 1

    def pick(m: np.ndarray) -> Localizations:
        u = None if locs.uncertainty is None else locs.uncertainty[m]
        return replace(locs, frame=locs.frame[m], x=locs.x[m], y=locs.y[m], uncertainty=u)

    return pick(~odd), pick(odd)


def select_frames(locs: Localizations, first: int | None = None, last: int | None = None) -> Localizations:
    """The localizations with ``first <= frame <= last`` (1-based, inclusive; None: open)."""
    m = np.ones(len(locs), dtype=bool)
    if first is not None:
        m &= locs.frame >= first
    if last is not None:
        m &= locs.frame <= last
    u = None if locs.uncertainty is None else locs.uncertainty[m]
    return replace(locs, frame=locs.frame[m], x=locs.x[m], y=locs.y[m], uncertainty=u)


def frc_localizations(locs: Localizations, pixel_size: float = FRC_PIXEL_NM, grid: Grid | None = None,
                      block_frames: int | None = None, frames: tuple[int | None, int | None] = (None, None),
                      threshold: float = FRC_THRESHOLD) -> FRCResult:
    """FRC resolution (nm) of a localization table.

    Args:
        pixel_size: fine render pixel in nm (default 10 nm; it must be well below half the
            resolution, so that the crossing lies below the Nyquist frequency).
        grid: the region to use (nm); default: the bounding box of the localizations.
        block_frames: raw frames per block of the split; default: the frame range cut into
            :data:`FRC_BLOCKS` blocks.
        frames: (first, last) raw frames summed, 1-based inclusive; default: all.
    """
    locs = select_frames(locs, *frames)
    if len(locs) < 2:
        raise DBlinkError(f"{locs.source}: {len(locs)} localizations in the frame range; FRC needs more")
    f0, f1 = locs.frame_range
    n_frames = f1 - f0 + 1
    if block_frames is None:
        block_frames = max(1, math.ceil(n_frames / FRC_BLOCKS))
    if n_frames <= block_frames:
        raise DBlinkError(f"{locs.source}: frames {f0}-{f1} make a single block of {block_frames} "
                          f"frames; the FRC needs at least two (use a smaller frame block)")
    if grid is None:
        grid = Grid.around(locs, pixel_size)
    elif grid.pixel_size != pixel_size:
        grid = replace(grid, pixel_size=pixel_size)
    H, W = grid.shape
    if max(H, W) > MAX_FRC_SIDE:
        raise DBlinkError(f"the FRC grid would be {W} x {H} pixels of {pixel_size:g} nm (limit "
                          f"{MAX_FRC_SIDE} per side); choose a smaller --roi or a larger --pixel-size")
    half_a, half_b = split_halves(locs, block_frames, f0)
    imgs = [render(h, grid, frames_per_step=n_frames, first_frame=f0, n_steps=1) for h in (half_a, half_b)]
    if min(r.n_inside for r in imgs) == 0:
        raise DBlinkError(f"{locs.source}: one half of the split has no localizations in the region")
    res = frc_curve(imgs[0].video[0], imgs[1].video[0], pixel_size, threshold)
    res.info = {"localizations": [imgs[0].n_inside, imgs[1].n_inside], "block_frames": int(block_frames),
                "frames": [int(f0), int(f1)], "grid_px": [W, H],
                "roi_nm": [grid.x0, grid.y0, grid.width, grid.height]}
    return res


# ------------------------------------------------------------------------- decorrelation analysis

@dataclass
class DecorrelationResult:
    """Decorrelation analysis of one image.

    Attributes:
        radii: normalized frequencies r (1 = Nyquist) at which each curve is sampled.
        curves: d(r), one per filter: the unfiltered image first, then the high-pass filtered ones.
        sigmas: the high-pass σ of each curve in pixels (0 for the unfiltered image).
        peaks: (r_i, A_i) per curve; r_i = 0 where the curve has no usable maximum.
        k_c: the largest r_i (normalized frequency); resolution_nm = 2 · pixel_size / k_c.
    """

    radii: np.ndarray
    curves: list
    sigmas: list
    peaks: list
    k_c: float
    resolution_nm: float | None
    pixel_size: float
    note: str = ""


def _apodize(img: np.ndarray, edge: int) -> np.ndarray:
    """Mean-subtracted image with its borders tapered to zero over ``edge`` pixels (cosine)."""
    f = np.asarray(img, dtype=np.float64)
    f = f - f.mean()
    for axis, n in enumerate(f.shape):
        e = min(edge, n // 4)
        if e < 1:
            continue
        w = np.ones(n)
        taper = 0.5 * (1 - np.cos(np.pi * (np.arange(e) + 0.5) / e))
        w[:e], w[n - e:] = taper, taper[::-1]
        f = f * (w[:, None] if axis == 0 else w[None, :])
    return f


def _peak(d: np.ndarray, min_drop: float = 0.01) -> int | None:
    """Index of the local maximum of ``d``: the highest point before a rising tail (a tail that rises
    above every earlier point is cut off), when the curve falls after it by at least ``min_drop``
    of its height; None when there is none (the curve only rises: no cutoff seen)."""
    end = len(d)
    while end > 2:
        i = int(np.argmax(d[:end]))
        if i == end - 1:
            end -= 1
        elif d[i] > 0 and d[i] - d[i:end].min() >= min_drop * d[i]:
            return i if i > 0 else None
        else:
            end = i + 1
    return None


def decorrelation(image: np.ndarray, pixel_size: float, n_radii: int = 100, n_filters: int = 10,
                  edge: int = 20) -> DecorrelationResult:
    """Decorrelation analysis of a 2-D image with ``pixel_size`` nm pixels; resolution in nm."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or min(img.shape) < 16:
        raise DBlinkError(f"decorrelation analysis needs a 2-D image of at least 16 x 16 pixels, "
                          f"got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise DBlinkError("the image has NaN or infinite pixels")
    if not img.std() > 0:
        raise DBlinkError("the image is constant: nothing to measure")
    H, W = img.shape
    F = np.fft.rfft2(_apodize(img, edge))
    fy = np.fft.fftfreq(H)[:, None]
    fx = np.fft.rfftfreq(W)[None, :]
    f2 = (fy ** 2 + fx ** 2)  # cycles per pixel, squared
    k = 2.0 * np.sqrt(f2)     # normalized frequency, 1 = Nyquist
    wt = np.full(fx.shape, 2.0)  # the rfft half-plane stands for both conjugate halves
    wt[0, 0] = 1.0
    if W % 2 == 0:
        wt[0, -1] = 1.0
    wt = np.broadcast_to(wt, k.shape)
    inside = (k <= 1.0) & (np.abs(F) > 0)
    order = np.argsort(k[inside])
    ks = k[inside][order]
    mag = np.abs(F)[inside][order]
    w = wt[inside][order]
    f2s = f2[inside][order]
    n_radii = min(n_radii, max(H, W) // 2)  # no finer than the frequency grid
    radii = np.linspace(0, 1, n_radii + 1)[1:]
    idx = np.searchsorted(ks, radii, side="right")
    count = np.concatenate([[0.0], np.cumsum(w)])[idx]

    def curve(sigma: float) -> np.ndarray:
        h = 1.0 if sigma == 0 else 1.0 - np.exp(-2 * np.pi ** 2 * sigma ** 2 * f2s)
        num = np.concatenate([[0.0], np.cumsum(mag * h * w)])[idx]
        energy = np.sum((mag * h) ** 2 * w)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(count > 0, num / np.sqrt(energy * count), 0.0)
        return np.nan_to_num(d)

    curves, sigmas, peaks = [], [], []

    def add(sigma: float) -> float:
        d = curve(sigma)
        i = _peak(d)
        r, A = (float(radii[i]), float(d[i])) if i is not None else (0.0, 0.0)
        curves.append(d)
        sigmas.append(float(sigma))
        peaks.append((r, A))
        return r

    add(0.0)
    coarse = np.geomspace(max(H, W) / 4.0, 0.15, n_filters)
    rs = [add(s) for s in coarse]
    best = int(np.argmax(rs))
    if rs[best] > 0:  # refine between the neighbours of the best filter
        hi = coarse[max(best - 1, 0)]
        lo = coarse[min(best + 1, len(coarse) - 1)]
        for s in np.geomspace(hi, lo, n_filters + 2)[1:-1]:
            add(s)
    k_c = max(r for r, _ in peaks)
    if k_c <= 0:
        return DecorrelationResult(radii, curves, sigmas, peaks, 0.0, None, float(pixel_size),
                                   "no decorrelation peak: the image shows no noise-limited cutoff")
    return DecorrelationResult(radii, curves, sigmas, peaks, float(k_c), 2.0 * pixel_size / k_c,
                               float(pixel_size))


# ----------------------------------------------------------------------------- temporal consistency

def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    return float(np.sum(a * b) / den) if den > 0 else float("nan")


def frame_correlations(video: np.ndarray, shifts: np.ndarray | None = None) -> np.ndarray:
    """Normalized cross-correlation of each pair of consecutive frames (T - 1 values, in [-1, 1]).

    Args:
        video: (T, H, W).
        shifts: optional (T, 2) array, the known displacement (dy, dx) in pixels of the sample in
            frame t relative to its position in frame 0. Each frame is shifted back by it (Fourier
            shift, subpixel) and the pairs are compared over the part of the field that no frame's
            shift wrapped around (a border of ``ceil(max |shift|)`` pixels is left out).
    A pair with a constant frame gives NaN.
    """
    v = np.asarray(video, dtype=np.float64)
    if v.ndim != 3 or v.shape[0] < 2:
        raise DBlinkError(f"temporal consistency needs a video (T, H, W) with T >= 2, got shape {v.shape}")
    if shifts is not None:
        s = np.asarray(shifts, dtype=np.float64)
        if s.shape != (v.shape[0], 2) or not np.all(np.isfinite(s)):
            raise DBlinkError(f"shifts must be a finite (T, 2) array of (dy, dx) pixels, T = {v.shape[0]}; "
                              f"got shape {s.shape}")
        m = int(math.ceil(np.abs(s).max()))
        if 2 * m >= min(v.shape[1:]):
            raise DBlinkError(f"shifts of up to {m} pixels leave nothing of a {v.shape[2]} x {v.shape[1]} frame")
        v = np.stack([np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(f), -st)).real for f, st in zip(v, s)])
        if m:
            v = v[:, m:-m, m:-m]
    return np.array([_ncc(v[t], v[t + 1]) for t in range(v.shape[0] - 1)])


def temporal_consistency(video: np.ndarray, shifts: np.ndarray | None = None) -> float:
    """Mean normalized cross-correlation between consecutive frames (1 = perfectly consistent),
    after undoing the known motion ``shifts`` ((T, 2) pixels, see :func:`frame_correlations`)."""
    c = frame_correlations(video, shifts)
    c = c[np.isfinite(c)]
    return float(c.mean()) if len(c) else float("nan")


# ----------------------------------------------------------------------------------------- plots

def check_output_prefix(prefix: str | Path, suffix: str) -> Path:
    """The plot path ``PREFIX<suffix>`` (e.g. ``_frc.png``), checked before any work: its folder must
    exist and be writable, and the path must not be a folder (one DBlinkError line otherwise)."""
    from .files import check_output_path

    prefix = Path(prefix)
    if not prefix.name or prefix.name in (".", ".."):
        raise DBlinkError(f"{prefix}: the output prefix needs a file name part (e.g. {prefix}/name)")
    return check_output_path(prefix.parent / f"{prefix.name}{suffix}", overwrite=True, what="plot")


def plot_frc(res: FRCResult, path: str | Path) -> Path:
    """PNG: the FRC curve (raw, grey; smoothed, black), the 1/7 threshold and the resolution."""
    from .pictures import line_plot

    x = res.frequency * 1000.0  # cycles per µm
    label = (f"FRC resolution {res.resolution_nm:.1f} nm" if res.resolution_nm else "no 1/7 crossing")
    vlines = [1000.0 / res.resolution_nm] if res.resolution_nm else []
    return line_plot(path, [(x, res.frc, (170, 170, 170)), (x, res.smoothed, (0, 0, 0))],
                     hlines=[(res.threshold, "1/7")], vlines=vlines, xlabel="spatial frequency (1/um)",
                     ylabel="FRC", title=f"{label} ({res.pixel_size:g} nm pixels)", ylim=(-0.2, 1.05))


def plot_decorrelation(res: DecorrelationResult, path: str | Path) -> Path:
    """PNG: the decorrelation curves d(r) (unfiltered black, high-pass filtered coloured), their
    peaks, and k_c."""
    from .pictures import line_plot

    n = len(res.curves)
    colors = [(0, 0, 0)] + [(int(220 * i / max(n - 1, 1)), 60, int(220 * (1 - i / max(n - 1, 1))))
                            for i in range(1, n)]
    series = [(res.radii, c, col) for c, col in zip(res.curves, colors)]
    pts = [(r, A) for r, A in res.peaks if r > 0]
    label = (f"decorrelation resolution {res.resolution_nm:.1f} nm, k_c = {res.k_c:.3f}"
             if res.resolution_nm else "no decorrelation peak")
    top = max(1e-6, max(float(c.max()) for c in res.curves)) * 1.1
    return line_plot(path, series, points=pts, vlines=[res.k_c] if res.k_c else [],
                     xlabel="normalized frequency (1 = Nyquist)", ylabel="d(r)",
                     title=f"{label} ({res.pixel_size:g} nm pixels)", xlim=(0, 1), ylim=(0, top))


# ----------------------------------------------------------------------------- over time
@dataclass
class OverTime:
    """Resolution of every time point of a reconstructed video.

    Attributes:
        steps: time points, 1-based (as ImageJ numbers frames).
        time_s: the time of each step in seconds (step start), or None when the exposure is unknown.
        decorrelation_nm: decorrelation resolution per step, nm (NaN where there is none: see
            ``notes``).
        k_c: the decorrelation cutoff per step (normalized frequency, 1 = Nyquist; 0 where none).
        frc_nm: FRC resolution per step between two reconstructions from alternating halves of the
            localizations (NaN where none), or None when not measured; ``frc_at_limit``: True
            where the value is only a bound (2 pixels: finer than the grid can show).
        pixel_size: nm.
        notes: why a step has no value ("" where it has).
        info: what was measured (channel, halves' split, ...).
    """

    steps: np.ndarray
    time_s: np.ndarray | None
    decorrelation_nm: np.ndarray
    k_c: np.ndarray
    pixel_size: float
    frc_nm: np.ndarray | None = None
    frc_at_limit: np.ndarray | None = None
    notes: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line: median and range of the decorrelation (and FRC) resolution, and at how many
        time points there is none (or, for the FRC, only the grid's bound)."""
        def part(v: np.ndarray) -> str:
            ok = v[np.isfinite(v)]
            if not len(ok):
                return f"no value at any of {len(v)} time points"
            return (f"median {np.median(ok):.1f} nm (range {ok.min():.1f}-{ok.max():.1f} nm over "
                    f"{len(ok)} of {len(v)} time points)")
        out = "decorrelation " + part(self.decorrelation_nm)
        if self.frc_nm is not None:
            lim = self.frc_at_limit if self.frc_at_limit is not None else np.zeros(len(self.frc_nm), bool)
            measured = np.where(lim, np.nan, self.frc_nm)
            out += "; FRC of halves "
            out += part(measured) if np.isfinite(measured).any() or not lim.any() else ""
            if lim.any():
                out += (f"{', ' if np.isfinite(measured).any() else ''}at most "
                        f"{2 * self.pixel_size:g} nm (the grid's limit) at {int(lim.sum())} of "
                        f"{len(lim)} time points")
        return out


def decorrelation_over_time(video: np.ndarray, pixel_size: float, frame_interval_s: float | None = None,
                            progress: Callable[[int, int], None] | None = None) -> OverTime:
    """Decorrelation analysis (:func:`decorrelation`) of every frame of ``video`` (T, H, W) with
    ``pixel_size`` nm pixels. A frame without a result (constant, no peak) gets NaN and a note.
    ``frame_interval_s``: seconds per step, for the time column."""
    v = np.asarray(video)
    if v.ndim != 3 or v.shape[0] < 1:
        raise DBlinkError(f"resolution over time needs a video (T, H, W), got shape {v.shape}")
    T = v.shape[0]
    res_nm, k_c, notes = np.full(T, np.nan), np.zeros(T), []
    for t in range(T):
        try:
            r = decorrelation(v[t], pixel_size)
            note = r.note
            if r.resolution_nm is not None:
                res_nm[t], k_c[t] = r.resolution_nm, r.k_c
        except DBlinkError as exc:  # a constant (e.g. empty) frame
            note = str(exc)
        notes.append(note)
        if progress is not None:
            progress(t + 1, T)
    steps = np.arange(1, T + 1)
    time_s = None if frame_interval_s is None else (steps - 1) * float(frame_interval_s)
    return OverTime(steps, time_s, res_nm, k_c, float(pixel_size), notes=notes)


def frc_over_time(a: np.ndarray, b: np.ndarray, pixel_size: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """FRC resolution (nm) of each pair of frames of two videos (T, H, W) of the same field:
    (values, at_limit, notes). Where the FRC stays above 1/7 up to the grid's Nyquist frequency
    the value is that bound, 2 pixels (``at_limit`` True: the resolution is at most this); NaN
    where there is no value (see the note)."""
    T = min(len(a), len(b))
    n = max(len(a), len(b))
    out, limited, notes = np.full(n, np.nan), np.zeros(n, dtype=bool), []
    for t in range(T):
        try:
            r = frc_curve(a[t], b[t], pixel_size)
        except DBlinkError as exc:
            notes.append(str(exc))
            continue
        if r.resolution_nm is not None:
            out[t] = r.resolution_nm
            notes.append("")
        elif r.note.startswith("the FRC stays above"):
            out[t], limited[t] = 2 * pixel_size, True
            notes.append(f"FRC at most {2 * pixel_size:g} nm: it stays above 1/7 up to the Nyquist "
                         f"frequency of the {pixel_size:g} nm grid")
        else:
            notes.append(r.note)
    notes += ["one half has no localizations at this time point"] * (n - T)
    return out, limited, notes


def halves_over_time(table: str | Path | Localizations, params: dict, model: str | None = None,
                     progress: str = "none", **options) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reconstruct the two halves of a table's localizations with the parameters of an earlier
    run (the hyperstack's Info ``params``): each step's raw frames are split into two blocks of
    ``S // 2`` frames (alternating blocks, :func:`split_halves`), so both halves see every step
    and an emitter's burst in consecutive frames stays mostly in one half. Returns the two
    videos (T, H, W) and what was done. ``options``: reconstruction options that replace the
    run's (e.g. ``device``)."""
    from .pipeline import reconstruct_table
    from .tables import read_localizations

    S = int(params["frames_per_step"])
    f0 = int(params.get("first_frame", 1))
    kw = dict(pixel_size=float(params["pixel_size_nm"]), frames_per_step=S, first_frame=f0,
              window=int(params["window"]), stride=int(params.get("stride", 1)),
              roi=tuple(params["roi_nm"]), confidence=False)
    for k in ("last_frame", "precision", "tta"):
        if params.get(k) is not None:
            kw[k] = params[k]
    kw.update(options)
    locs = table if isinstance(table, Localizations) else read_localizations(table, kw.get("camera_pixel"))
    kw.pop("camera_pixel", None)
    block = max(1, S // 2)
    halves = split_halves(locs, block, f0)
    if min(len(h) for h in halves) == 0:
        raise DBlinkError(f"{locs.source}: one half of the split has no localizations")
    T = int(params.get("steps", 0)) or None
    vids = []
    for h in halves:
        r = reconstruct_table(h, model or params["model"], progress=progress, warn=lambda m: None, **kw)
        v = r.reconstruction.video
        if T is not None and len(v) > T:
            v = v[:T]
        vids.append(v)
    return vids[0], vids[1], {"block_frames": block, "localizations": [len(h) for h in halves]}


def over_time_rows(res: OverTime) -> list[dict]:
    """The CSV rows: step, time_s, decorrelation_nm, k_c, [frc_nm, frc_at_limit,] note."""
    rows = []
    for i, step in enumerate(res.steps):
        row = {"step": int(step), "time_s": "" if res.time_s is None else f"{res.time_s[i]:.6g}",
               "decorrelation_nm": "" if not np.isfinite(res.decorrelation_nm[i]) else f"{res.decorrelation_nm[i]:.2f}",
               "k_c": f"{res.k_c[i]:.4f}"}
        if res.frc_nm is not None:
            row["frc_nm"] = "" if not np.isfinite(res.frc_nm[i]) else f"{res.frc_nm[i]:.2f}"
            row["frc_at_limit"] = int(bool(res.frc_at_limit is not None and res.frc_at_limit[i]))
        row["note"] = res.notes[i] if i < len(res.notes) else ""
        rows.append(row)
    return rows


def write_over_time_csv(res: OverTime, path: str | Path) -> Path:
    """The per-step table as CSV (written atomically)."""
    import csv

    from .files import atomic_output

    rows = over_time_rows(res)
    with atomic_output(path, overwrite=True) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return Path(path)


def plot_over_time(res: OverTime, path: str | Path) -> Path:
    """PNG: resolution (nm) against time: decorrelation (black), FRC of the halves (blue), and
    the Nyquist limit of the render grid (2 pixels, red dashes) that decorrelation cannot pass."""
    from .pictures import line_plot

    x = res.time_s if res.time_s is not None else res.steps.astype(float)
    series = [(x, res.decorrelation_nm, (0, 0, 0))]
    values = [res.decorrelation_nm]
    if res.frc_nm is not None:
        series.append((x, res.frc_nm, (0, 90, 200)))
        values.append(res.frc_nm)
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    nyquist = 2 * res.pixel_size
    top = (float(finite.max()) if len(finite) else nyquist * 2) * 1.1
    pts = [(a, b) for a, b in zip(x, res.decorrelation_nm) if np.isfinite(b)] if len(x) <= 60 else None
    title = ("decorrelation (black)" + (" and FRC of halves (blue)" if res.frc_nm is not None else "")
             + f" per time point, {res.pixel_size:g} nm pixels")
    return line_plot(path, series, hlines=[(nyquist, "2 px")], points=pts,
                     xlabel="time (s)" if res.time_s is not None else "time point",
                     ylabel="resolution (nm)", title=title,
                     xlim=(float(x[0]), float(x[-1]) if len(x) > 1 else float(x[0]) + 1),
                     ylim=(0.0, max(top, nyquist * 1.2)))


def open_hyperstack(path: str | Path, min_px: int = 16) -> tuple[np.ndarray, dict]:
    """A TCYX hyperstack of frames of at least ``min_px`` px and its metadata; one DBlinkError
    line for anything unreadable."""
    from .hyperstack import read_hyperstack

    src = Path(path)
    try:
        data, meta = read_hyperstack(src)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise DBlinkError(f"{src}: not a readable TIFF hyperstack ({first_line(exc)})") from None
    if data.ndim != 4 or min(data.shape) < 1 or min(data.shape[2:]) < min_px:
        raise DBlinkError(f"{src}: expected a hyperstack of frames (T, C, Y, X) of at least {min_px} x "
                          f"{min_px} px, got an image of shape {tuple(data.shape)}")
    return data, meta


def calibrated_pixel_size(path: str | Path, meta: dict, pixel_size: float | None = None) -> float:
    """``pixel_size`` (nm) if given, else the hyperstack's calibration in microns, in nm."""
    if pixel_size is not None:
        return float(pixel_size)
    if str(meta.get("unit", "")).lower() not in ("micron", "µm", "um"):
        raise DBlinkError(f"{path}: no pixel calibration in microns; give --pixel-size NM")
    return float(meta["pixel_size_um"]) * 1000.0


def read_video(path: str | Path, channel: int = 1, pixel_size: float | None = None
               ) -> tuple[np.ndarray, float, float | None, dict]:
    """One channel of a hyperstack written by dblink (or any ImageJ TCYX TIFF calibrated in
    microns): (video (T, H, W), pixel size in nm, seconds per step or None, the run's parameters
    from its Info, {} if none). ``pixel_size`` (nm) overrides the calibration. One DBlinkError
    line for anything unreadable."""
    src = Path(path)
    data, meta = open_hyperstack(src, 16)
    if not 1 <= channel <= data.shape[1]:
        raise DBlinkError(f"--channel must be between 1 and {data.shape[1]}, got {channel}")
    pixel_size = calibrated_pixel_size(src, meta, pixel_size)
    interval = None
    if str(meta.get("tunit", "")).lower() in ("sec", "s", "second", "seconds") and meta.get("finterval"):
        interval = float(meta["finterval"])
    params = meta.get("dblink") if isinstance(meta.get("dblink"), dict) else {}
    return data[:, channel - 1], float(pixel_size), interval, params
