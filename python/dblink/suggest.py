"""Parameters from the data: ``dblink suggest TABLE`` and ``dblink reconstruct --auto``.

What is measured on a localization table (all on the render grid of the model, 40 nm for the
shipped models):

* **density on the structure**: localizations per µm² of structure per raw frame. The movie is cut
  into blocks of raw frames; in each block the structure is the set of render pixels whose
  1-pixel-blurred count exceeds what a uniform spread of the block's localizations would give;
  density = localizations on the structure / (structure area × frames). Also the density per µm²
  of the field (what the models' training range is given in).
* **localization precision** (nm): the median of the table's uncertainty column, else NeNA
  (Endesfelder et al. 2014): distances of each localization to its nearest neighbour in the next
  raw frame; for one emitter seen twice they are Rayleigh-distributed with scale √2·σ, so σ =
  median distance / (√2 · √(2 ln 2)) over distances below 150 nm.
* **motion**: how fast the structure changes. Consecutive blocks are rendered and blurred (1 px);
  their shift (cross-correlation peak) gives the drift speed in nm per raw frame (reported only: on
  sparse tables and rotating or bending structures it is noisy). What the proposal uses is the
  correlation of consecutive blocks (blurred by 2 px = 80 nm, blocks of about
  :data:`MOTION_LOCS` localizations, at most a quarter of the movie) relative to the correlation
  two independent halves of one block would reach with the block's full count (the noise ceiling:
  even/odd raw frames, Spearman-Brown corrected). Motion and bending lower it; ``motion_frames``
  is the time over which it would fall to one half (exponential decay): the number of raw frames
  within which the structure changes at the 80 nm scale.
* **shape** (for the model): in each block, the structure at a quarter of its bright end (1-pixel-
  blurred counts above 25 % of their 99th percentile); the *filled share* is the part of it at
  least 2.5 render pixels (100 nm) from its edge — thin filaments have almost none (≤ 0.18 on the
  simulated filaments, fast motion included), filled mitochondria much (≥ 0.27).

What is proposed, with the reason (:func:`suggest`): frames per step, window, stride and model.
The rules and their thresholds were chosen on simulated movies of known density and speed and
checked against a grid sweep (``tools/suggest_sweep.py``; the README has the table).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from .errors import DBlinkError
from .tables import Localizations

#: relative correlation at which the structure counts as changed (``motion_frames``)
MOTION_LEVEL = 0.5
#: NeNA: nearest-neighbour distances above this (nm) are not the same emitter
NENA_MAX_NM = 150.0
#: fewer localizations than this cannot be measured; fewer than FEW_LOCS: a note says the
#: measures are rough
MIN_LOCS = 20
FEW_LOCS = 1000
#: a block of raw frames holds at least this many localizations (fewer: longer blocks)
BLOCK_LOCS = 2000
#: blocks of the motion measure hold about this many localizations (at most a quarter of the movie)
MOTION_LOCS = 1000
#: filled share above which the structure is filled (mitochondria), below: filaments
FILLED_SHARE = 0.22


@dataclass
class Measures:
    """What :func:`measure` finds in a table (lengths in nm, densities per µm² per raw frame)."""

    localizations: int
    frames: tuple[int, int]
    field_um2: float
    density_field: float
    structure_um2: float
    density_structure: float
    precision_nm: float | None
    precision_method: str
    block_frames: int
    speed_nm_per_frame: float | None
    motion_frames: float | None
    filled_share: float
    pixel_size: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Suggestion:
    """Proposed settings (:class:`~.options.ReconstructOptions` field names) and why."""

    options: dict
    reasons: dict
    measures: Measures
    notes: list = field(default_factory=list)

    def report(self) -> str:
        """The short report ``dblink suggest`` prints."""
        m = self.measures
        lines = [f"dblink suggest: {m.localizations:,} localizations, raw frames "
                 f"{m.frames[0]}–{m.frames[1]}, field {m.field_um2:.3g} µm²"]
        lines.append(f"  density      {m.density_structure:.3g} per µm² of structure per raw frame "
                     f"({m.structure_um2:.3g} µm² of structure; {m.density_field:.3g} per µm² of "
                     f"the field)")
        prec = "unknown" if m.precision_nm is None else f"{m.precision_nm:.1f} nm ({m.precision_method})"
        lines.append(f"  precision    {prec}")
        if m.speed_nm_per_frame is None:
            lines.append("  motion       not measurable (too few frames)")
        else:
            tau = "longer than the movie" if m.motion_frames is None or not math.isfinite(
                m.motion_frames) else f"{m.motion_frames:.0f} raw frames"
            lines.append(f"  motion       drift {m.speed_nm_per_frame:.3g} nm per raw frame; the "
                         f"structure changes within {tau}")
        lines.append(f"  shape        {100 * m.filled_share:.0f} % of the structure over 100 nm "
                     f"from its edge ({'filled' if m.filled_share > FILLED_SHARE else 'thin'})")
        lines.append("suggested:")
        for k, v in self.options.items():
            lines.append(f"  --{k.replace('_', '-'):<17} {v!s:<12} {self.reasons.get(k, '')}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.options.items())
        lines.append(f"command: dblink reconstruct TABLE -o OUT.tif {flags}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- measurements
def _counts(locs: Localizations, sel: np.ndarray, x0: float, y0: float, px: float,
            shape: tuple[int, int]) -> np.ndarray:
    """(H, W) localization counts of the rows ``sel``."""
    H, W = shape
    c = np.floor((locs.x[sel] - x0) / px).astype(np.int64)
    r = np.floor((locs.y[sel] - y0) / px).astype(np.int64)
    ok = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    return np.bincount(r[ok] * W + c[ok], minlength=H * W).reshape(H, W).astype(np.float64)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 0 else 0.0


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Shift (dy, dx) in pixels that best maps ``a`` onto ``b`` (cross-correlation peak with a
    parabolic sub-pixel fit)."""
    fa, fb = np.fft.rfft2(a - a.mean()), np.fft.rfft2(b - b.mean())
    xc = np.fft.irfft2(np.conj(fa) * fb, s=a.shape)
    i, j = np.unravel_index(int(np.argmax(xc)), xc.shape)
    H, W = a.shape

    def sub(m1: float, m0: float, p1: float) -> float:
        den = m1 - 2 * m0 + p1
        return 0.5 * (m1 - p1) / den if den != 0 else 0.0

    dy = i + sub(xc[(i - 1) % H, j], xc[i, j], xc[(i + 1) % H, j])
    dx = j + sub(xc[i, (j - 1) % W], xc[i, j], xc[i, (j + 1) % W])
    dy = dy - H if dy > H / 2 else dy
    dx = dx - W if dx > W / 2 else dx
    return float(dy), float(dx)


def nena(locs: Localizations, max_nm: float = NENA_MAX_NM) -> float | None:
    """NeNA precision (nm) from nearest neighbours in consecutive raw frames, or None when fewer
    than 50 pairs are found."""
    from scipy.spatial import cKDTree

    order = np.argsort(locs.frame, kind="stable")
    f, x, y = locs.frame[order], locs.x[order], locs.y[order]
    frames, starts = np.unique(f, return_index=True)
    ends = np.append(starts[1:], len(f))
    d_all = []
    n_pairs = 0
    for k in range(len(frames) - 1):
        if frames[k + 1] != frames[k] + 1:
            continue
        a, b = slice(starts[k], ends[k]), slice(starts[k + 1], ends[k + 1])
        tree = cKDTree(np.column_stack([x[b], y[b]]))
        d, _ = tree.query(np.column_stack([x[a], y[a]]), distance_upper_bound=max_nm)
        d = d[np.isfinite(d)]
        d_all.append(d)
        n_pairs += d.size
        if n_pairs > 200_000:
            break
    if n_pairs < 50:
        return None
    d = np.concatenate(d_all)
    return float(np.median(d) / (math.sqrt(2) * math.sqrt(2 * math.log(2))))


def measure(locs: Localizations, pixel_size: float = 40.0, block_frames: int | None = None) -> Measures:
    """Density, precision, motion and shape of a table (see the module docstring).

    Args:
        locs: the localizations (nm, 1-based frames).
        pixel_size: the render pixel (nm) on which structure and motion are measured.
        block_frames: raw frames per block (default: enough for :data:`BLOCK_LOCS` localizations,
            at least 50 and at most a third of the movie).
    """
    n = len(locs)
    if n < MIN_LOCS:
        raise DBlinkError(f"{locs.source}: only {n} localizations; too few to measure density and "
                          f"motion (at least {MIN_LOCS})")
    f0, f1 = locs.frame_range
    n_frames = f1 - f0 + 1
    px = float(pixel_size)
    x0, y0 = math.floor(float(locs.x.min()) / px) * px, math.floor(float(locs.y.min()) / px) * px
    W = int(math.floor((float(locs.x.max()) - x0) / px)) + 1
    H = int(math.floor((float(locs.y.max()) - y0) / px)) + 1
    if H * W > 16_000_000:
        raise DBlinkError(f"{locs.source}: the field is {W} x {H} px at {px:g} nm, too large to "
                          f"measure; choose a region (--roi)")
    field_um2 = H * W * px * px / 1e6
    if block_frames is None:
        per_frame = n / n_frames
        block_frames = int(min(max(50, math.ceil(BLOCK_LOCS / per_frame)), max(1, n_frames // 3)))
    block_frames = max(1, int(block_frames))
    n_blocks = max(1, n_frames // block_frames)
    blk = (locs.frame - f0) // block_frames
    renders, areas, on, filled = [], [], [], []
    for b in range(n_blocks):
        sel = blk == b
        cnt = _counts(locs, sel, x0, y0, px, (H, W))
        sm = ndimage.gaussian_filter(cnt, 1.0)
        mask = sm > max(cnt.sum() / (H * W), 1e-12)
        areas.append(mask.sum() * px * px / 1e6)
        on.append(cnt[mask].sum())
        renders.append(sm)
        bright = sm > 0.25 * np.percentile(sm, 99)
        if bright.any():
            filled.append(float((ndimage.distance_transform_edt(bright)[bright] >= 2.5).mean()))
    frames_used = n_blocks * block_frames
    structure_um2 = float(np.mean(areas))
    density_structure = float(np.sum(on) / max(np.sum(areas) * block_frames, 1e-12))
    # precision
    if locs.uncertainty is not None and np.isfinite(locs.uncertainty).any():
        precision, method = float(np.nanmedian(locs.uncertainty)), "median of the uncertainty column"
    else:
        precision, method = nena(locs), "NeNA"
        if precision is None:
            method = "too few pairs in consecutive frames for NeNA"
    # motion: drift speed (reported) and the time within which the structure changes (used)
    speed = tau = None
    if n_blocks >= 2:
        shifts = [_shift(renders[b], renders[b + 1]) for b in range(n_blocks - 1)]
        speed = float(np.median([math.hypot(*s) for s in shifts]) * px / block_frames)
    L = int(min(max(50, math.ceil(MOTION_LOCS * n_frames / n)), n_frames // 4))
    if L >= 1 and n_frames // L >= 2:
        nb = n_frames // L
        mblk = (locs.frame - f0) // L
        rend, halves2 = [], []
        for b in range(nb):
            sel = mblk == b
            rend.append(ndimage.gaussian_filter(_counts(locs, sel, x0, y0, px, (H, W)), 2.0))
            e = ndimage.gaussian_filter(_counts(locs, sel & (locs.frame % 2 == 0), x0, y0, px, (H, W)), 2.0)
            o = ndimage.gaussian_filter(_counts(locs, sel & (locs.frame % 2 == 1), x0, y0, px, (H, W)), 2.0)
            halves2.append(_corr(e, o))
        c_half = float(np.mean(halves2))
        ceiling = 2 * c_half / (1 + c_half) if c_half > 0 else 0.0
        r = float(np.mean([_corr(rend[b], rend[b + 1]) for b in range(nb - 1)]))
        r = r / ceiling if ceiling > 0 else 0.0
        tau = math.inf if r >= 1 else (L * math.log(MOTION_LEVEL) / math.log(r) if r > 0 else 0.0)
    return Measures(localizations=n, frames=(f0, f1), field_um2=field_um2,
                    density_field=n / (field_um2 * n_frames), structure_um2=structure_um2,
                    density_structure=density_structure, precision_nm=precision,
                    precision_method=method, block_frames=block_frames,
                    speed_nm_per_frame=speed, motion_frames=tau,
                    filled_share=float(np.mean(filled)) if filled else 0.0,
                    pixel_size=px)


# ----------------------------------------------------------------------------- the proposal
#: frames per step the suggestion chooses from
STEP_CHOICES = (5, 10, 20)
#: localizations per µm² of structure per step of the models' training frames per step (10):
#: for filaments their evaluation-like movie (measure() on tools/suggest_sweep.py's fil-d0.3-slow:
#: 1.94 per µm² per raw frame); for mitochondria 33, so that 4.3-4.8 per µm² per frame gets 5
#: frames per step, which was best on both sweep seeds 16 and 17 (the first rule, 42.5 from
#: mito-d0.6-slow's density, gave 10 and lost 0.018 on seed 17); a model file not listed: the
#: filaments'
DENSITY_REF = {"filaments": 19.4, "mitochondria": 33.0}
#: a step needs at least this share of the reference (the shortest such step is proposed): on the
#: simulated filaments 0.83 per µm² of structure per frame did best with 20 frames per step, 1.94
#: with 10 and 7.1 with 5 (README "Parameters from the data")
DENSITY_SHARE = 0.62
#: structure that changes within fewer raw frames than this is fast: the shortest steps (on the
#: simulated filaments fast motion did best with 5 frames per step at every density tried)
FAST_FRAMES = 200.0


@dataclass(frozen=True)
class _ModelInfo:
    name: str
    frames_per_step: int
    window: int
    pixel_size: float
    meta: dict


@functools.lru_cache(maxsize=8)
def _model_info(model: str) -> _ModelInfo:
    """What the proposal needs of a model (loaded once per process and name)."""
    from .export import load_model
    lm = load_model(model)
    return _ModelInfo(lm.name, int(lm.frames_per_step), int(lm.window), float(lm.pixel_size),
                      {"density_range_per_um2_per_frame": lm.meta.get("density_range_per_um2_per_frame")})


def suggest(locs: Localizations, model: str | None = None, device: str = "auto",
            pixel_size: float | None = None) -> Suggestion:
    """Measure a table (:func:`measure`) and propose frames per step, window, stride and model.

    Args:
        locs: the localizations.
        model: keep this model (name or file); None: choose between the bundled ``filaments``
            and ``mitochondria`` by the structure's shape.
        device: where the network will run (the stride depends on it).
        pixel_size: the render pixel (nm; default: the model's).
    """
    from .imagej import auto_stride

    notes: list[str] = []
    m = measure(locs, pixel_size or 40.0)
    reasons: dict[str, str] = {}
    if model is None:
        filled = m.filled_share > FILLED_SHARE
        model = "mitochondria" if filled else "filaments"
        reasons["model"] = (f"{100 * m.filled_share:.0f} % of the structure lies over 100 nm inside "
                            f"it: {'filled (tubules, blobs)' if filled else 'thin (filaments)'}")
    else:
        reasons["model"] = "given"
    lm = _model_info(model)
    S0, W0 = int(lm.frames_per_step), int(lm.window)
    if pixel_size is None and abs(lm.pixel_size - m.pixel_size) > 1e-6:
        m = measure(locs, lm.pixel_size)
    ref = DENSITY_REF.get(lm.name, DENSITY_REF["filaments"]) * S0 / 10
    need = DENSITY_SHARE * ref
    S = next((c for c in STEP_CHOICES if m.density_structure * c >= need), max(STEP_CHOICES))
    fast = m.motion_frames is not None and m.motion_frames < FAST_FRAMES
    if fast:
        S = min(STEP_CHOICES)
        reasons["frames_per_step"] = (f"the structure changes within {m.motion_frames:.0f} raw "
                                      f"frames (fast): the shortest steps")
    elif S == max(STEP_CHOICES) and m.density_structure * S < need:
        reasons["frames_per_step"] = (f"sparse: {m.density_structure * S:.3g} localizations per µm² "
                                      f"of structure even in {S} frames")
    else:
        reasons["frames_per_step"] = (f"the shortest step with {need:.3g} localizations per µm² of "
                                      f"structure ({m.density_structure * S:.3g})")
    W = W0
    reasons["window"] = (f"the model's (±{W0} steps = {(2 * W0 + 1) * S} raw frames of context); "
                         f"in the sweep ±10 won only for very fast motion")
    stride = auto_stride(device)
    reasons["stride"] = ("exact mode on a GPU" if stride == 1 else
                         f"{stride} outputs per window on a CPU (about {stride}x faster, same "
                         f"measured F1)")
    if m.localizations < FEW_LOCS:
        notes.append(f"only {m.localizations} localizations: the measures are rough")
    if m.precision_nm is not None and not (5.0 <= m.precision_nm <= 45.0):
        notes.append(f"precision {m.precision_nm:.0f} nm is outside 10–40 nm, where the models "
                     f"were checked")
    rng = lm.meta.get("density_range_per_um2_per_frame")
    if rng and not (0.5 * rng[0] <= m.density_field <= 2 * rng[1]):
        notes.append(f"field density {m.density_field:.3g} per µm² per frame is outside the "
                     f"model's training range {rng[0]:g}–{rng[1]:g}")
    opts = {"model": model, "frames_per_step": S, "window": W, "stride": stride}
    return Suggestion(options=opts, reasons=reasons, measures=m, notes=notes)


def apply_auto(locs, options, warn=None, keep_model: str | None = None):
    """``--auto``: the options with the settings left at their defaults replaced by the
    suggestion's (a model other than the default ``filaments``, ``keep_model``, and any frames
    per step, window or stride given, are kept). The choice is reported through ``warn``. A map
    stack has no localizations to measure: its options are returned unchanged, with a note."""
    from dataclasses import fields, replace

    if not isinstance(locs, Localizations):
        if warn is not None:
            warn("--auto measures localization tables; a map stack keeps the model's settings")
        return options
    defaults = {f.name: f.default for f in fields(options)}
    if keep_model is None and options.model != defaults["model"]:
        keep_model = options.model
    sug = suggest(locs, model=keep_model, device=options.device, pixel_size=options.pixel_size)
    kw = {}
    for name, value in sug.options.items():
        if getattr(options, name) == defaults[name] and value != defaults[name]:
            kw[name] = value
    if warn is not None:
        m = sug.measures
        chosen = ", ".join(f"{k} {v}" for k, v in sug.options.items())
        warn(f"--auto: {chosen} (density {m.density_structure:.3g} per µm² of structure per "
             f"frame, structure changes within "
             f"{'—' if m.motion_frames is None else f'{m.motion_frames:.0f}'} frames)")
    return replace(options, **kw) if kw else options
