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
  sparse tables and rotating or bending structures it is noisy). What the proposal uses is
  ``motion_frames``, the number of raw frames within which the structure changes by half at the
  80 nm scale: blocks of L raw frames (about :data:`MOTION_LOCS` localizations, 50 frames at least,
  a quarter of the movie at most) are blurred by 2 px (80 nm) and each is correlated with the next
  one (starts every L/4 frames). The correlation two blocks would reach if nothing moved (the
  noise ceiling) is that of two halves of one block, Spearman-Brown corrected to the block's full
  count; the halves are split by *blinking event* (localizations linked across consecutive raw
  frames within 4·√2·σ, σ the localization's uncertainty or the measured precision), because
  even/odd frames share the emitters that stay on for several frames and so overstate the ceiling
  most on sparse tables (the first rule's even/odd split read slow sparse filaments as moving).
  Each pair is compared with the geometric mean of its two blocks' ceilings. The ratio r is
  turned into a half-life with the decay exp(−λ·lag) averaged over the blocks' lags: pairs of
  consecutive blocks span lags 0–2L around L, the halves of one block lags 0–L, so
  r = [(1 − e⁻ˣ)/x]² / (2/x · [1 − (1 − e⁻ˣ)/x]) with x = λL, and ``motion_frames`` = ln 2 / λ.
  Checked against the ground truth's own half-life (the same 80 nm correlation on the true
  structure; ``tools/suggest_sweep.py --motion-check``) on 84 simulated filament movies of 1,000
  frames (the sweep's seven filament scenarios, seeds 100-111, 360-9,500 localizations): on the
  same side of 200 and 400 raw frames (the step limits below) in 87 % and 96 % of them (the
  even/odd measure: 81 % and 49 %; it read every slow movie, even the densest, as changing within
  110-950 frames). Its limits: on tables of a few hundred localizations it is off by a factor of
  2-4 either way, and when the structure changes within far fewer frames than a block (very fast
  motion in blocks of 250 frames) the blocks average the motion away and it can read as slow.
  Only consecutive frames are linked: fluorescent proteins that blink again after dark gaps of
  several frames (the real fixed E. coli tables in shared/data/thunderstorm-real) put the same
  molecules in both halves and read as changing within 55-79 frames; linking across gaps of up to
  10 frames reads them as static but makes fast motion read slower on the simulations (which have
  no dark gaps), so the gap is not yet measured from the data.
* **pair motion** (``pair_frames``): how soon the structure changes, from pairs of
  localizations rather than rendered blocks, which must hold hundreds of raw frames on sparse
  tables and so average away a change within tens of frames (very fast filaments read 2.7×
  slower than the truth). At each lag of raw frames (bins 1-3, 3-6, ..., 400-800), pairs of
  localizations of different blinking events 60-200 nm apart (:data:`PAIR_NM`: beyond one
  emitter's repeated blinks, within a filament's neighbourhood) are counted against what as many
  pairs spread at random over the field would give; a moving structure loses that excess with
  the lag. ``pair_frames`` is the lag at which the excess falls below 60 % of its peak over lags
  3-50 (:data:`PAIR_FRACTION`, log-interpolated), inf when it does not within 800 frames. On the
  library's 1,400 simulated movies (v7) the median is 54 raw frames for very fast filaments (their
  true half-life: a median of about 40), 136 for fast ones (about 125), 131 for fast
  mitochondria, 250-290 for slow mitochondria, and most slow filaments do not change within 800
  frames; but sparse slow filaments (0.05 per µm² per frame) read under 50 frames in a quarter of
  movies (too few pairs), which is why it is a fifth feature beside ``motion_frames``, not its
  replacement. At most :data:`PAIR_LOCS` localizations are read (whole 1,600-frame spans spread
  over the movie, thinned at random beyond that, and again to about :data:`PAIR_PAIRS` close
  pairs in a dense cluster). On the real tables of fixed E. coli cells (shared/data/
  thunderstorm-real) both fields show no change within 800 frames — static, as they are — where
  ``motion_frames`` reads 55 and 79 (molecules blinking again after dark gaps, which pairs
  under 60 nm leave out).
* **shape** (for the model): in each block, the structure at a quarter of its bright end (1-pixel-
  blurred counts above 25 % of their 99th percentile); the *filled share* is the part of it at
  least 2.5 render pixels (100 nm) from its edge — thin filaments have almost none (≤ 0.20 on the
  simulated filaments of sweep seeds 16-18, fast motion included), filled mitochondria much
  (≥ 0.27). Very fast motion smears filaments into bands within a block (0.31 on seed 19's very
  fast movie, which then got the mitochondria model). So the share is measured a second time
  (``filled_share_short``) over blocks of half ``motion_frames`` (50 raw frames at least, a
  density block at most), which the structure's motion does not smear: on seeds 23-42 fast
  filaments had a median of 0.09 over density blocks and 0.02 over short ones, sparse slow
  mitochondria 0.16 and 0.11 (neither share alone separates them: mitochondria lose share in
  sparse short blocks too, so both are features of the library below).
* **shape up close** (``linearity``, :func:`linearity`): the neighbours of each localization
  (other blinking events within :data:`LINEAR_NM` = 160 nm and :data:`LINEAR_FRAMES` = 10 raw
  frames, too short for motion to smear) spread along a line on filaments and both ways on
  mitochondria; the median over localizations of the smaller over the larger second moment of
  their offsets. On the library's 3,000 simulated movies (seeds 23-102, 183-402; medians, 10th-90th
  percentiles): slow and fast filaments 0.04-0.07 (0.02-0.11), very fast 0.10 (0.07-0.17), dense
  slow filaments (1 per µm² per frame) 0.09, sparse slow mitochondria 0.13 (0.09-0.19), dense
  mitochondria 0.26-0.27 (0.21-0.34); 202 of the 300 sparse slow filament movies (about 400
  localizations) have too few localizations with 3 neighbours to be measured (None). Tangled fast
  filaments, which look filled by both filled shares, read as lines here.

What is proposed, with the reason (:func:`suggest`): model, frames per step, window and stride.
Model, frames per step and window are read from a **library of simulated movies**
(:data:`LIBRARY`, built by ``tools/suggest_sweep.py --library`` from grid sweeps: each movie's
measures and the F1 of every setting of its grid, reconstructed with the bundled models): of the
:data:`NEIGHBOURS` library movies nearest to the table in (log density on the structure ×2, log
``motion_frames`` ×0.5, filled share, filled share over short blocks ×2, log ``pair_frames``
×1.5, log of the localization count up to :data:`COUNT_CLIP` ×2, shape up close ×2:
:data:`FEATURE_WEIGHTS`; names and weights stored in the library) that share one grid,
the setting that lost the least F1 against each movie's own best (:func:`from_library`).
A learned lookup, not a formula, because the measures are noisy in ways a threshold rule cannot
undo (a sparse slow movie reads as moving; fast filaments smeared within a block look filled) and
the library's neighbours carry the same noise. The localization count (up to 2,000, one density
block's worth) says how far the motion measures can be trusted: on a table of a few hundred
localizations both can read a static structure as moving (library v8 over seeds 283-342: 6 of 60
sparse slow filament movies lost over 0.1 F1 that way), and among library movies of as few
localizations the proposal then weighs what such readings turned out to be (at that density the
slow movies' long steps are also the best single setting for fast filaments: docs/suggest/
sparse-fast). Above 2,000 it is one value and changes nothing between tables. The shape up close
(library v11) keeps tangled fast filaments, which look filled to both filled shares, from dense
mitochondria's neighbours (docs/suggest/heldout-v11.md). It is used only with
the model files it was measured with (their SHA-256 are in the library) and at its 40 nm grid; for
other models the density and motion rules (:func:`_rules`) decide. Stride: from the device.
Judged on held-out seeds against the rules (``tools/suggest_sweep.py --summary``; the README).
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import DBlinkError
from .tables import Localizations

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
#: at most this many pairs of blocks are correlated (evenly spread over the movie)
MOTION_PAIRS = 48
#: localizations in consecutive raw frames closer than this many σ are one blinking event (4 × the
#: Rayleigh scale √2·σ of two localizations of one emitter: 0.03 % of true links are missed; at 3×,
#: 1 % are, which splits a fifth of the long (10-40 frame) events across both halves of a block and
#: read static sparse filaments as changing within 560-870 frames)
LINK_SIGMAS = 4 * math.sqrt(2)
#: pair motion: localizations this far apart (nm; beyond one emitter's repeats, within one
#: filament's neighbourhood) are counted at each lag of raw frames
PAIR_NM = (60.0, 200.0)
#: edges of the lag bins (raw frames) of the pair motion
PAIR_LAGS = (1, 3, 6, 12, 25, 50, 100, 200, 400, 800)
#: the pair motion is the lag at which the pairs' excess over random falls below this fraction of
#: its peak over lags 3-50 raw frames (chosen by leave one seed out on the library's movies)
PAIR_FRACTION = 0.6
#: the pair motion reads at most this many localizations (spans of 2 × the longest lag spread
#: over the movie; a span holding more is thinned at random)
PAIR_LOCS = 20_000
#: and at most about this many pairs of them within PAIR_NM[1] (a dense cluster is thinned again)
PAIR_PAIRS = 4_000_000
#: filled share above which the structure is filled (mitochondria), below: filaments
FILLED_SHARE = 0.22
#: the short blocks of the second shape measure last at least this many raw frames
SHAPE_MIN_FRAMES = 50
#: shape up close (:func:`linearity`): the neighbours of a localization are the localizations of
#: other blinking events within this many nm and raw frames (chosen by leave one seed out on the
#: library's movies among 80-200 nm and 5-20 frames)
LINEAR_NM = 160.0
LINEAR_FRAMES = 10
#: a localization with fewer neighbours than this is left out; fewer localizations than
#: LINEAR_MIN_LOCS with enough neighbours: not measured (None)
LINEAR_NEIGHBOURS = 3
LINEAR_MIN_LOCS = 20
#: the measure reads at most this many localizations (whole spans of raw frames spread over the
#: movie) and about PAIR_PAIRS pairs of them (a dense cluster is thinned at random)
LINEAR_LOCS = 20_000


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
    #: the filled share again over blocks of half ``motion_frames`` (at least
    #: :data:`SHAPE_MIN_FRAMES`, at most ``block_frames``), which motion does not smear
    filled_share_short: float = 0.0
    #: raw frames within which localizations 60-200 nm apart lose 40 % of their excess over
    #: random pairs (:func:`pair_frames`); inf: not within 800 frames; None: too few pairs
    pair_frames: float | None = None
    #: shape up close (:func:`linearity`): 0 for points on a line, 1 for a round cloud; None: too
    #: few localizations with neighbours
    linearity: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def filled(self) -> bool:
        """The structure is filled (tubules, blobs), not thin: ``filled_share`` over
        :data:`FILLED_SHARE`."""
        return self.filled_share > FILLED_SHARE

    @property
    def model_by_shape(self) -> str:
        """The bundled model the shape alone points to."""
        return "mitochondria" if self.filled else "filaments"


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
            still = m.motion_frames is None or not math.isfinite(m.motion_frames)
            tau = ("does not change by half within the movie" if still else
                   f"changes by half within {m.motion_frames:.0f} raw frames")
            lines.append(f"  motion       drift {m.speed_nm_per_frame:.3g} nm per raw frame; the "
                         f"structure {tau}")
        if m.pair_frames is not None:
            pairs = (f"no change within {PAIR_LAGS[-1]} raw frames" if not math.isfinite(m.pair_frames)
                     else f"changes within {m.pair_frames:.0f} raw frames")
            lines.append(f"               from pairs of localizations {PAIR_NM[0]:.0f}–{PAIR_NM[1]:.0f} "
                         f"nm apart: {pairs}")
            if _disagree(m.motion_frames, m.pair_frames):
                lines.append("               (the two disagree over 4x: molecules that blink again after "
                             "dark frames, or few localizations, read as change in blocks; README: "
                             "Parameters from the data)")
        lines.append(f"  shape        {100 * m.filled_share:.0f} % of the structure over 100 nm "
                     f"from its edge ({'filled' if m.filled else 'thin'}); "
                     f"{100 * m.filled_share_short:.0f} % over blocks too short for motion to smear it")
        up_close = ("not measured (too few localizations with neighbours)" if m.linearity is None
                    else f"{m.linearity:.2f}")
        lines.append(f"               up close: {up_close} (spread across over along of neighbours within "
                     f"{LINEAR_NM:.0f} nm and {LINEAR_FRAMES} raw frames; lines about 0.05, filled 0.15–0.3)")
        lines.append("suggested:")
        for k, v in self.options.items():
            lines.append(f"  --{k.replace('_', '-'):<17} {v!s:<12} {self.reasons.get(k, '')}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.options.items())
        lines.append(f"command: dblink reconstruct TABLE -o OUT.tif {flags}")
        return "\n".join(lines)


def _disagree(block: float | None, pairs: float | None) -> bool:
    """Whether the block motion (``motion_frames``) reads a change within 400 raw frames that the
    pair motion (``pair_frames``) puts over 4 times later or never: on the real fixed E. coli
    tables (re-blinking molecules) and on 68 of the 1,800 sweep movies (mostly sparse or very
    fast ones, where the block measure is noisy)."""
    if block is None or not math.isfinite(block) or block >= 400 or pairs is None:
        return False
    return not math.isfinite(pairs) or pairs > 4 * block


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


def _filled(sm: np.ndarray) -> float | None:
    """The filled share of one block's 1-pixel-blurred counts (the module docstring: shape), or
    None when the block is empty."""
    bright = sm > 0.25 * np.percentile(sm, 99)
    if not bright.any():
        return None
    return float((ndimage.distance_transform_edt(bright)[bright] >= 2.5).mean())


def filled_share_over(locs: Localizations, block_frames: int, x0: float, y0: float, px: float,
                      shape: tuple[int, int], known: dict[int, float | None] | None = None) -> float:
    """Mean filled share of the whole blocks of ``block_frames`` raw frames (at most
    2 × :data:`MOTION_PAIRS` of them, spread over the movie); 0 when all are empty. ``known``: the
    shares (by block index) of blocks of this length already rendered, not rendered again."""
    f0, f1 = locs.frame_range
    L = max(1, int(block_frames))
    n_full = max(1, (f1 - f0 + 1) // L)
    blocks = np.unique(np.linspace(0, n_full - 1, min(n_full, 2 * MOTION_PAIRS)).round().astype(np.int64))
    blk = (locs.frame - f0) // L
    known = known or {}
    return _mean_share([known[b] if b in known else
                        _filled(ndimage.gaussian_filter(_counts(locs, blk == b, x0, y0, px, shape), 1.0))
                        for b in blocks.tolist()])


def _mean_share(shares: list[float | None]) -> float:
    """Mean filled share of the blocks that are not empty (None); 0 when all are."""
    shares = [v for v in shares if v is not None]
    return float(np.mean(shares)) if shares else 0.0


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


def events(locs: Localizations, precision: float | None = None) -> np.ndarray:
    """Blinking events: an id per localization, shared by localizations linked across consecutive
    raw frames (each is linked to its nearest neighbour in the previous frame when they are closer
    than :data:`LINK_SIGMAS` × σ of that neighbour, at most :data:`NENA_MAX_NM`; σ from the
    uncertainty column, else ``precision``, else 20 nm)."""
    from scipy.spatial import cKDTree

    n = len(locs)
    sigma = np.full(n, float(precision) if precision else 20.0)
    if locs.uncertainty is not None:
        u = np.asarray(locs.uncertainty, dtype=np.float64)
        sigma = np.where(np.isfinite(u) & (u > 0), u, sigma)
    reach = np.minimum(LINK_SIGMAS * sigma, NENA_MAX_NM)
    # frames far apart in a third coordinate: a neighbour within NENA_MAX_NM is in that frame
    z = (locs.frame.astype(np.float64) - float(locs.frame.min())) * 4 * NENA_MAX_NM
    tree = cKDTree(np.column_stack([locs.x, locs.y, z]))
    d, j = tree.query(np.column_stack([locs.x, locs.y, z - 4 * NENA_MAX_NM]),
                      distance_upper_bound=NENA_MAX_NM)
    ok = np.isfinite(d)
    parent = np.arange(n)
    jj = j[ok]
    ok_idx = np.flatnonzero(ok)
    link = d[ok] <= reach[jj]
    parent[ok_idx[link]] = jj[link]
    for _ in range(64):  # pointer jumping: every localization to the first of its event
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    return parent


def _block_decay(r: float, L: float) -> float:
    """Half-life (raw frames) of a decay exp(−λ·lag) that gives the ratio ``r`` between the
    correlation of consecutive blocks of ``L`` frames and that of halves of one block (see the
    module docstring); inf for r ≥ 1."""
    from scipy.optimize import brentq

    def ratio(x: float) -> float:
        e = (1 - math.exp(-x)) / x
        return e * e / (2 / x * (1 - e))

    if r >= ratio(1e-6):  # no decay the blocks can resolve
        return math.inf
    if r <= ratio(50.0):
        return L * math.log(2) / 50.0
    return L * math.log(2) / brentq(lambda x: ratio(x) - r, 1e-6, 50.0)


def motion_frames(locs: Localizations, precision: float | None, x0: float, y0: float, px: float,
                  shape: tuple[int, int], ev: np.ndarray | None = None) -> float | None:
    """Raw frames within which the structure changes by half at 80 nm (the module docstring), or
    None when the movie is shorter than two blocks. ``ev``: the :func:`events` of ``locs``."""
    n = len(locs)
    f0, f1 = locs.frame_range
    n_frames = f1 - f0 + 1
    L = int(min(max(50, math.ceil(MOTION_LOCS * n_frames / n)), n_frames // 4))
    if L < 1 or n_frames < 2 * L:
        return None
    if ev is None:
        ev = events(locs, precision)
    _, inv = np.unique(ev, return_inverse=True)
    half = (np.random.default_rng(0).random(int(inv.max()) + 1) < 0.5)[inv]
    rel = locs.frame - f0
    starts = np.arange(0, n_frames - 2 * L + 1, max(1, L // 4))
    if starts.size > MOTION_PAIRS:
        starts = np.unique(np.linspace(0, starts[-1], MOTION_PAIRS).round().astype(np.int64))

    def image(sel: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(_counts(locs, sel, x0, y0, px, shape), 2.0)

    ceilings: dict[int, float] = {}

    def ceiling(s: int, sel: np.ndarray) -> float:
        if s not in ceilings:
            c = _corr(image(sel & half), image(sel & ~half))
            ceilings[s] = 2 * c / (1 + c) if c > 0 else 0.0
        return ceilings[s]

    num = den = 0.0
    for s in starts.tolist():
        a = (rel >= s) & (rel < s + L)
        b = (rel >= s + L) & (rel < s + 2 * L)
        num += _corr(image(a), image(b))
        den += math.sqrt(ceiling(s, a) * ceiling(s + L, b))
    return _block_decay(num / den if den > 0 else 0.0, L)


def _spread_spans(rel: np.ndarray, span: int, most: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole spans of ``span`` raw frames spread over the movie (``rel``: each localization's
    frame from the first), as many as hold about ``most`` localizations (all when the table
    holds fewer): the indices of their localizations and the spans' numbers."""
    n_spans = int(rel.max()) // span + 1
    m = min(n_spans, max(1, math.ceil(most * n_spans / rel.size)))
    spans = np.unique(np.linspace(0, n_spans - 1, m).round().astype(np.int64))
    return np.flatnonzero(np.isin(rel // span, spans)), spans


def _thinned_tree(pts: np.ndarray, radius: float, seed: int):
    """A KD-tree of the points ``pts``, thinned at random (generator ``seed``) to about
    :data:`PAIR_PAIRS` pairs within ``radius`` when a dense cluster holds more (pairs fall with
    the square of the share kept): the rows kept and their tree."""
    from scipy.spatial import cKDTree

    tree = cKDTree(pts)
    close = (tree.count_neighbors(tree, radius) - len(pts)) / 2
    if close <= PAIR_PAIRS:
        return np.arange(len(pts)), tree
    keep = np.flatnonzero(np.random.default_rng(seed).random(len(pts)) < math.sqrt(PAIR_PAIRS / close))
    return keep, cKDTree(pts[keep])


def pair_frames(locs: Localizations, ev: np.ndarray) -> float | None:
    """Raw frames within which the structure changes, from pairs of localizations (the module
    docstring: pair motion): at each lag of raw frames, pairs of localizations of different
    blinking events (``ev``: :func:`events`) :data:`PAIR_NM` apart, over what as many pairs
    spread at random over the field would give; the lag at which that excess falls below
    :data:`PAIR_FRACTION` of its peak (log-interpolated between lag bins). inf when it does not
    within :data:`PAIR_LAGS`; None when the peak has no excess (too few localizations)."""
    edges = np.asarray(PAIR_LAGS)
    r1, r2 = PAIR_NM
    f0, _ = locs.frame_range
    rel = locs.frame - f0
    span = 2 * int(edges[-1])
    # whole spans spread over the movie, as many as hold about PAIR_LOCS localizations; thinned
    # at random to PAIR_LOCS (the excess ratio keeps its mean), then in a dense cluster again
    idx, spans = _spread_spans(rel, span, PAIR_LOCS)
    if idx.size > PAIR_LOCS:
        idx = idx[np.random.default_rng(0).random(idx.size) < PAIR_LOCS / idx.size]
    keep, tree = _thinned_tree(np.column_stack([locs.x[idx], locs.y[idx]]), r2, seed=1)
    idx = idx[keep]
    x, y, fr, e, sp = locs.x[idx], locs.y[idx], rel[idx], ev[idx], rel[idx] // span
    i, j = tree.query_pairs(r2, output_type="ndarray").T
    keep = (np.hypot(x[i] - x[j], y[i] - y[j]) >= r1) & (e[i] != e[j]) & (sp[i] == sp[j])
    K = np.histogram(np.abs(fr[i] - fr[j])[keep], edges)[0].astype(np.float64)
    N = np.zeros(len(edges) - 1)
    for s in spans.tolist():  # pairs of localizations per lag, within each span
        c = np.bincount(fr[sp == s] - s * span, minlength=span).astype(np.float64)
        ac = np.correlate(c, c, "full")[span - 1:]  # ac[lag]: pairs that many frames apart
        N += [ac[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]
    area = float(np.ptp(locs.x)) * float(np.ptp(locs.y))
    excess = K / np.maximum(N * math.pi * (r2 * r2 - r1 * r1) / max(area, 1e-12), 1e-12) - 1
    peak_bin = 1 + int(np.argmax(excess[1:5]))
    peak = excess[peak_bin]
    if not peak > 0:
        return None
    level = PAIR_FRACTION * peak
    centre = np.log(np.sqrt(edges[:-1] * edges[1:]))
    for b in range(peak_bin + 1, len(excess)):
        if N[b] == 0:  # the movie is shorter than this lag
            break
        if excess[b] < level:
            a, c = excess[b - 1], excess[b]
            t = (a - level) / (a - c)
            return float(math.exp(centre[b - 1] + t * (centre[b] - centre[b - 1])))
    return math.inf


def linearity(locs: Localizations, ev: np.ndarray) -> float | None:
    """Shape up close, which motion over many frames cannot smear (the module docstring): for each
    localization, the scatter of its neighbours (localizations of other blinking events, ``ev``:
    :func:`events`, within :data:`LINEAR_NM` nm and :data:`LINEAR_FRAMES` raw frames) about it;
    the median, over localizations with at least :data:`LINEAR_NEIGHBOURS`, of the scatter's
    smaller over its larger principal second moment: near 0 on a line, 1 in a round cloud. None
    when fewer than :data:`LINEAR_MIN_LOCS` localizations have enough neighbours."""
    R, T = LINEAR_NM, float(LINEAR_FRAMES)
    rel = locs.frame - locs.frame_range[0]
    idx, _ = _spread_spans(rel, 20 * LINEAR_FRAMES, LINEAR_LOCS)  # all of a short table
    # frames scaled so that LINEAR_FRAMES is as far as LINEAR_NM: a ball of radius √2·R holds
    # every neighbour
    pts = np.column_stack([locs.x[idx], locs.y[idx], rel[idx] * (R / T)])
    keep, tree = _thinned_tree(pts, math.sqrt(2) * R, seed=2)
    idx, pts = idx[keep], pts[keep]
    i, j = tree.query_pairs(math.sqrt(2) * R, output_type="ndarray").T
    dx, dy = pts[j, 0] - pts[i, 0], pts[j, 1] - pts[i, 1]
    e = ev[idx]
    ok = (np.hypot(dx, dy) <= R) & (np.abs(rel[idx][j] - rel[idx][i]) <= T) & (e[i] != e[j])
    i, j, dx, dy = i[ok], j[ok], dx[ok], dy[ok]
    both = np.concatenate([i, j])
    dx, dy = np.concatenate([dx, -dx]), np.concatenate([dy, -dy])
    n = idx.size
    count = np.bincount(both, minlength=n)
    sxx, syy = np.bincount(both, dx * dx, n), np.bincount(both, dy * dy, n)
    sxy = np.bincount(both, dx * dy, n)
    use = count >= LINEAR_NEIGHBOURS
    if use.sum() < LINEAR_MIN_LOCS:
        return None
    a, b, c = sxx[use], syy[use], sxy[use]
    half = (a + b) / 2
    root = np.sqrt(np.maximum(half * half - (a * b - c * c), 0.0))
    return float(np.median((half - root) / np.maximum(half + root, 1e-12)))


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
    # pairs of consecutive blocks for the drift, at most MOTION_PAIRS spread over the movie; density
    # and shape from the blocks they use. One render is kept at a time (memory does not grow with
    # the movie's length; a long table costs at most 2 x MOTION_PAIRS renders)
    pairs = list(range(n_blocks - 1))
    if len(pairs) > MOTION_PAIRS:
        pairs = np.unique(np.linspace(0, n_blocks - 2, MOTION_PAIRS).round().astype(np.int64)).tolist()
    used = sorted({b for p in pairs for b in (p, p + 1)}) or [0]
    pair_starts = set(pairs)
    areas, on, shifts = [], [], []
    filled: dict[int, float | None] = {}  # by block
    previous: tuple[int, np.ndarray] | None = None
    for b in used:
        sel = blk == b
        cnt = _counts(locs, sel, x0, y0, px, (H, W))
        sm = ndimage.gaussian_filter(cnt, 1.0)
        mask = sm > max(cnt.sum() / (H * W), 1e-12)
        areas.append(mask.sum() * px * px / 1e6)
        on.append(cnt[mask].sum())
        filled[b] = _filled(sm)
        if previous is not None and previous[0] == b - 1:
            shifts.append(_shift(previous[1], sm))
        previous = (b, sm) if b in pair_starts else None
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
    if shifts:
        speed = float(np.median([math.hypot(*s) for s in shifts]) * px / block_frames)
    ev = events(locs, precision)
    tau = motion_frames(locs, precision, x0, y0, px, (H, W), ev)
    pair = pair_frames(locs, ev)
    # the shape again over blocks that motion does not smear: fast filaments smeared into bands
    # within a density block look as filled as sparse mitochondria
    short = block_frames
    if tau is not None and math.isfinite(tau):
        short = int(min(max(SHAPE_MIN_FRAMES, tau / 2), block_frames))
    filled_short = filled_share_over(locs, short, x0, y0, px, (H, W),
                                     known=filled if short == block_frames else None)
    return Measures(localizations=n, frames=(f0, f1), field_um2=field_um2,
                    density_field=n / (field_um2 * n_frames), structure_um2=structure_um2,
                    density_structure=density_structure, precision_nm=precision,
                    precision_method=method, block_frames=block_frames,
                    speed_nm_per_frame=speed, motion_frames=tau,
                    filled_share=_mean_share(list(filled.values())),
                    pixel_size=px, filled_share_short=filled_short, pair_frames=pair,
                    linearity=linearity(locs, ev))


# ----------------------------------------------------------------------------- the proposal
#: frames per step the suggestion chooses from
STEP_CHOICES = (5, 10, 20)
#: localizations per µm² of structure per step that a step should reach (for a model trained at 10
#: frames per step; scaled by the model's own frames per step), measured where motion does not
#: matter, on the sweep's slow movies (tools/suggest_sweep.py, seeds 16-18): slow filaments with
#: 1.66-1.94 per µm² of structure per raw frame did up to 0.018 F1 better with 20 frames per step
#: (33-39 per step) than with 10 (17-19 per step), or 0.005 worse (seed 16), and at 6-7 per frame
#: 5 frames (31-36 per step) matched 10 within 0.006 while 20 (120-140 per step) lost up to 0.043:
#: the filament model does best from about 30 per step (the third quartile of its training movies'
#: density per step; their quartiles are 13, 22 and 30). The
#: mitochondria model does best lower: at 4.3-4.8 per frame 5 frames per step (21-24) beat 10
#: (43-48) by 0.018 on seeds 16 and 17, at 3.8 (seed 18) 10 was best by 0.002; a model not listed:
#: the filaments' value
DENSITY_NEED = {"filaments": 30.0, "mitochondria": 20.5}
#: a step may last at most this fraction of ``motion_frames`` (the structure takes at least this
#: many steps to change by half): the filament model's training movies (10 frames per step, up to
#: 500 nm drift, 40° rotation, 120 nm bending in 510 frames) change by half within 14 steps at the
#: fastest and within 20 steps in their fastest tenth (the same 80 nm correlation on their ground
#: truth); longer steps show the network motion it has rarely or never seen
STEPS_PER_CHANGE = 20.0


#: the simulated movies the proposal is read from (``tools/suggest_sweep.py --library``)
LIBRARY = Path(__file__).with_name("suggest_library.json")
#: how many of the library's movies, the most like the table, decide (a library may say otherwise:
#: its ``neighbours``)
NEIGHBOURS = 7
#: weights of the features (log density on the structure, log motion_frames, 5 × filled share,
#: 5 × filled share over short blocks, log pair_frames, log localizations, 5 × linearity) in the
#: distance, each feature first scaled by its spread over the library (a library may say
#: otherwise: its ``feature_weights``, chosen with it by leave-one-seed-out)
FEATURE_WEIGHTS = (2.0, 0.5, 1.0, 2.0, 1.5, 2.0, 2.0)
#: the :class:`Measures` fields the features are read from, in order (a library names its own:
#: ``features``; libraries v1-v6 had the first four, v7-v9 the first five, v10 the first six)
FEATURE_MEASURES = ("density_structure", "motion_frames", "filled_share", "filled_share_short",
                    "pair_frames", "localizations", "linearity")
#: the localization count is a feature up to this many (one density block's worth,
#: :data:`BLOCK_LOCS`): below it the motion measures are read from few blocks and pairs; above it
#: all tables are alike (chosen with its weight by leave one seed out on the library's movies,
#: docs/suggest/heldout-v10.md)
COUNT_CLIP = float(BLOCK_LOCS)
#: a table whose shape up close is not measured (``linearity`` None: too few localizations with
#: neighbours, sparse tables) is put at this value, about the middle of the library's movies
LINEAR_NONE = 0.15
#: the features and default weights of a library that does not name its features (v1-v6)
_FOUR_FEATURES = FEATURE_MEASURES[:4]
_FOUR_WEIGHTS = (2.0, 1.0, 1.0, 2.0)
#: settings whose mean loss is within this of the least are ties; of those, the model's own
#: window is proposed
TIE = 0.002
#: a mean loss above this on the nearest movies makes the report name the runner-up to compare with
UNSURE_LOSS = 0.02
#: motion_frames is clipped to this range (frames) before its log is taken: longer = static
MOTION_CLIP = (10.0, 5000.0)
#: pair_frames likewise (its longest lag is 800 frames)
PAIR_CLIP = (1.0, 1000.0)


def setting_key(model: str, frames_per_step: int, window: int) -> str:
    """A grid setting as the library and the sweep files name it: ``filaments S=10 W=25``."""
    return f"{model} S={int(frames_per_step)} W={int(window)}"


def parse_setting(key: str) -> tuple[str, int, int]:
    """(model, frames per step, window) of a :func:`setting_key`."""
    model, S, W = key.split()
    return model, int(S[2:]), int(W[2:])


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _log_clipped(v: float | None, clip: tuple[float, float]) -> float:
    """log of ``v`` clipped to ``clip``; None or inf (never changes): the upper end."""
    v = clip[1] if v is None or not math.isfinite(v) else v
    return math.log(min(max(float(v), clip[0]), clip[1]))


#: each feature from its measure (see :data:`FEATURE_WEIGHTS`)
_FEATURE = {
    "density_structure": lambda v: math.log(max(float(v), 1e-3)),
    "motion_frames": lambda v: _log_clipped(v, MOTION_CLIP),
    "filled_share": lambda v: 5.0 * float(v),
    "filled_share_short": lambda v: 5.0 * float(v),
    "pair_frames": lambda v: _log_clipped(v, PAIR_CLIP),
    "localizations": lambda v: _log_clipped(v, (1.0, COUNT_CLIP)),
    "linearity": lambda v: 5.0 * (LINEAR_NONE if v is None else float(v)),
}
#: what the report calls each feature (a table outside the library's range on it)
_FEATURE_NAME = {"density_structure": "density on the structure", "motion_frames": "motion",
                 "filled_share": "shape", "filled_share_short": "shape over short blocks",
                 "pair_frames": "motion from pairs", "localizations": "localizations",
                 "linearity": "shape up close"}


def features(m: Measures | dict, names: tuple[str, ...] = FEATURE_MEASURES) -> np.ndarray:
    """The point of a table's measures or of a library movie in the library's space (the
    features ``names``; see :data:`FEATURE_WEIGHTS`)."""
    get = m.get if isinstance(m, dict) else lambda key: getattr(m, key)
    return np.array([_FEATURE[k](get(k)) for k in names])


@functools.lru_cache(maxsize=4)
def _library(path: str) -> dict | None:
    """The library with its movies' features as an array (None when the file is absent)."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        lib = json.loads(p.read_text())
        names = tuple(lib.get("features", _FOUR_FEATURES))
        X = np.array([features(m, names) for m in lib["movies"]])
        if X.ndim != 2 or not len(X) or not isinstance(lib["models"], dict):
            raise ValueError("no movies")
        if not all(isinstance(m["f1"], dict) and m["f1"] for m in lib["movies"]):
            raise ValueError("a movie without F1")
        w = np.array(lib.get("feature_weights", FEATURE_WEIGHTS if "features" in lib else
                             _FOUR_WEIGHTS), dtype=float)
        k = lib.get("neighbours", NEIGHBOURS)
        if w.shape != (X.shape[1],) or not (np.isfinite(w).all() and (w >= 0).all()) or \
                not (isinstance(k, int) and k >= 1):
            raise ValueError("bad neighbours or feature weights")
    except (ValueError, KeyError, TypeError) as exc:
        raise DBlinkError(f"{p}: not a dblink suggestion library ({type(exc).__name__}); "
                          f"reinstall dblink or rebuild it (tools/suggest_sweep.py --library)") from None
    lib["X"], lib["spread"], lib["weights"], lib["k"] = X, X.std(0) + 1e-9, w, k
    lib["names"] = names
    lib["grids"] = [frozenset(m["f1"]) for m in lib["movies"]]  # the settings each movie has
    return lib


def _library_model(model: str | None, lib: dict) -> str | None | bool:
    """The library's name for ``model`` (None: any of its models), or False when the library was
    measured with other model files than those ``model`` (or the bundled ones) resolves to."""
    from .modelmeta import resolve_model

    names = [model] if model is not None else list(lib["models"])
    for name in names:
        try:
            sha = file_sha256(resolve_model(name))
        except (OSError, DBlinkError):
            return False
        hits = [k for k, v in lib["models"].items() if v == sha]
        if not hits:
            return False
        if model is not None:
            return hits[0]
    return None


def _neighbours(lib: dict, order: np.ndarray, k: int, model: str | None) -> list[dict]:
    """The ``k`` movies of ``lib`` nearest first in ``order`` that share one grid (the set of
    settings measured): in a library whose movies of one sample have only their model's whole
    grid and the other model at one setting (v1-v3; v5's movies all have both whole grids),
    nearest movies of two samples would share only the two models' common settings.
    The grid is the one most of the ``k`` nearest movies have (a tie: the nearest's); with a
    ``model`` given, the grid with the most of that model's settings."""
    movies, grids = lib["movies"], lib["grids"]
    if model is not None:
        count = {g: sum(parse_setting(key)[0] == model for key in g) for g in set(grids)}
        ok = {g for g, c in count.items() if c == max(count.values())}
    else:
        first = [grids[i] for i in order[:k]]
        ok = {max(first, key=lambda g: (first.count(g), -first.index(g)))}
    return [movies[i] for i in order if grids[i] in ok][:k]


def from_library(m: Measures, model: str | None = None, k: int | None = None,
                 path: str | Path | None = None) -> dict | None:
    """The setting (model, frames per step, window) that lost the least F1 against each movie's
    best on the ``k`` library movies most like ``m`` (default: the library's ``neighbours``, else
    :data:`NEIGHBOURS`), with what the reasons need; None when there is no library or it was
    measured with other model files. ``model``: keep this model; ``path``: the library file
    (default :data:`LIBRARY`)."""
    lib = _library(str(LIBRARY if path is None else path))
    if lib is None:
        return None
    name = _library_model(model, lib)
    if name is False:
        return None
    x = features(m, lib["names"])
    d = np.sqrt(((((lib["X"] - x) / lib["spread"]) * lib["weights"]) ** 2).sum(1))
    near = _neighbours(lib, np.argsort(d, kind="stable"), lib["k"] if k is None else k, name)
    keys = set.intersection(*(set(n["f1"]) for n in near))
    if name is not None:
        keys = {key for key in keys if parse_setting(key)[0] == name}
    if not keys:
        return None
    loss = {key: float(np.mean([max(n["f1"].values()) - n["f1"][key] for n in near]))
            for key in sorted(keys)}
    low = min(loss.values())

    def own_window(key: str) -> bool:
        mname, _, W = parse_setting(key)
        return W == _model_info(mname).window

    # near-ties (within TIE of the least loss): the model's own window, which sees more context
    best = min(loss, key=lambda key: (not (loss[key] <= low + TIE and own_window(key)), loss[key]))
    mname, S, W = parse_setting(best)
    lo, hi = lib["X"].min(0), lib["X"].max(0)
    outside = [_FEATURE_NAME[k] for k, v, a, b in zip(lib["names"], x, lo, hi)
               if v < a - 0.1 * (b - a) or v > b + 0.1 * (b - a)]
    others = sorted((key for key in loss if key != best), key=loss.get)
    return {"model": mname, "frames_per_step": S, "window": W, "loss": loss[best],
            "runner_up": (others[0], loss[others[0]]) if others else None,
            "near": near, "outside": outside, "n_library": len(lib["movies"]),
            "by_count": "localizations" in lib["names"],
            "movie_frames": lib.get("movie", {}).get("frames")}


@dataclass(frozen=True)
class _ModelInfo:
    name: str
    frames_per_step: int
    window: int
    pixel_size: float
    meta: dict


@functools.lru_cache(maxsize=8)
def _model_info(model: str) -> _ModelInfo:
    """What the proposal needs of a model: its metadata (read without PyTorch)."""
    from .modelmeta import read_header
    lm = read_header(model)
    return _ModelInfo(lm.name, int(lm.frames_per_step), int(lm.window), float(lm.pixel_size),
                      {"density_range_per_um2_per_frame": lm.meta.get("density_range_per_um2_per_frame")})


_BUNDLED = ("filaments", "mitochondria")


def _kinds(near: list[dict]) -> str:
    """What the library movies ``near`` were, e.g. "5 filament movies moving fast, 2 mitochondria
    movies moving slowly" (from their sweep names, ``fil-d0.3-fast``); empty when a name is not of
    that form."""
    samples = {"fil": "filament", "mito": "mitochondria"}
    speeds = {"slow": "slowly", "fast": "fast", "vfast": "very fast"}
    count: dict[tuple[str, str], int] = {}
    for n in near:
        parts = str(n.get("movie", "")).split("-")
        if parts[0] not in samples or parts[-1] not in speeds:
            return ""
        what = (samples[parts[0]], speeds[parts[-1]])
        count[what] = count.get(what, 0) + 1
    return ", ".join(f"{c} {sample} movie{'s' if c > 1 else ''} moving {speed}"
                     for (sample, speed), c in sorted(count.items(), key=lambda kv: -kv[1]))


def from_rules(m: Measures) -> tuple[str, int, int]:
    """The density and motion rules' model, frames per step and window for measures taken at the
    chosen model's pixel size (the fallback of :func:`suggest`; judged against the library by
    ``tools/suggest_sweep.py``)."""
    model, S, W, _ = _rules(m, None, m.pixel_size, None, {})
    return model, S, W


def _rules(m: Measures, model: str | None, pixel_size: float | None, locs: Localizations,
           reasons: dict) -> tuple[str, int, int, Measures]:
    """The density and motion rules (before the library; still used for a model the library was
    not measured with): model by shape, frames per step = min(the density's, the motion's), the
    model's window."""
    if model is None:
        model = m.model_by_shape
        reasons["model"] = (f"{100 * m.filled_share:.0f} % of the structure lies over 100 nm inside "
                            f"it: {'filled (tubules, blobs)' if m.filled else 'thin (filaments)'}")
    else:
        reasons["model"] = "given"
    lm = _model_info(model)
    S0, W0 = int(lm.frames_per_step), int(lm.window)
    if pixel_size is None and abs(lm.pixel_size - m.pixel_size) > 1e-6:
        m = measure(locs, lm.pixel_size)
    need = DENSITY_NEED.get(lm.name, DENSITY_NEED["filaments"]) * S0 / 10
    S_density = next((c for c in STEP_CHOICES if m.density_structure * c >= need), max(STEP_CHOICES))
    tau = m.motion_frames
    S_motion = max(STEP_CHOICES) if tau is None else max(
        [c for c in STEP_CHOICES if c * STEPS_PER_CHANGE <= tau] or [min(STEP_CHOICES)])
    S = min(S_density, S_motion)
    if S < S_density:
        reasons["frames_per_step"] = (
            f"the structure changes by half within {tau:.0f} raw frames: a step of at most 1/"
            f"{STEPS_PER_CHANGE:g} of that (9 in 10 training movies took 20 steps or more)"
            + ("" if S * STEPS_PER_CHANGE <= tau else "; the shortest step offered")
            + f"; {need:.3g} localizations per µm² of structure would need {S_density}")
    elif m.density_structure * S < need:
        reasons["frames_per_step"] = (f"sparse: {m.density_structure * S:.3g} localizations per µm² "
                                      f"of structure even in {S} frames (aim: {need:.3g})")
    else:
        reasons["frames_per_step"] = (f"the shortest step with {need:.3g} localizations per µm² of "
                                      f"structure ({m.density_structure * S:.3g})")
    W = W0
    reasons["window"] = (f"the model's (±{W0} steps = {(2 * W0 + 1) * S} raw frames of context); "
                         f"in the sweep ±10 won only for very fast motion")
    return model, S, W, m


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
    choice = None
    if pixel_size is None or abs(float(pixel_size) - 40.0) < 1e-6:  # the library's render grid
        choice = from_library(m, model)
    if choice is not None:
        given = model is not None
        model, S, W = choice["model"], choice["frames_per_step"], choice["window"]
        near, k = choice["near"], len(choice["near"])
        taus = [math.inf if n["motion_frames"] is None else n["motion_frames"] for n in near]
        lo, hi = min(taus), max(taus)
        length = f"their {choice['movie_frames']:,} raw frames" if choice["movie_frames"] else "their length"
        tau_txt = (f"not changing by half within {length}" if math.isinf(lo) else
                   f"changing by half within {lo:.0f}–" + ("never" if math.isinf(hi) else f"{hi:.0f}")
                   + " raw frames")
        dens = [n["density_structure"] for n in near]
        kinds = _kinds(near)
        like = (f"the {k} of {choice['n_library']} simulated movies most like this one ("
                + (f"{kinds}; " if kinds else "") + f"density {min(dens):.2g}–{max(dens):.2g}, {tau_txt})")
        shape = (f"{100 * m.filled_share:.0f} % of the structure over 100 nm inside it "
                 f"({'filled' if m.filled else 'thin'})")
        if given:
            reasons["model"] = "given"
        elif model == m.model_by_shape or model not in _BUNDLED:
            reasons["model"] = f"{shape}; with the settings below, the best on the movies named below"
        else:
            reasons["model"] = (f"{shape}, but with the settings below the {model} model lost the "
                                f"least on the movies named below")
        reasons["frames_per_step"] = (f"the least F1 lost against each one's best setting on {like}: "
                                      f"{choice['loss']:.3f} on average")
        reasons["window"] = (f"the same movies' (±{W} steps = {(2 * W + 1) * S} raw frames of "
                             f"context)")
        if choice["loss"] > UNSURE_LOSS and choice["runner_up"] is not None:
            key, loss2 = choice["runner_up"]
            rm, rS, rW = parse_setting(key)
            notes.append(f"an uncertain choice: even with it those movies lost {choice['loss']:.3f} F1 "
                         f"on average against their own best; the next best was --model {rm} "
                         f"--frames-per-step {rS} --window {rW} ({loss2:.3f}): compare the two")
        if choice["outside"]:
            notes.append(f"the {' and '.join(choice['outside'])} lie outside the simulated movies the "
                         f"choice is read from: the nearest were used; compare with another setting")
    else:
        model, S, W, m = _rules(m, model, pixel_size, locs, reasons)
        if model in _BUNDLED and pixel_size is None and _library(str(LIBRARY)) is not None:
            notes.append("the suggestion library was measured with other model files than these: "
                         "the density and motion rules were used")
    stride = auto_stride(device)
    reasons["stride"] = ("exact mode on a GPU" if stride == 1 else
                         f"{stride} outputs per window on a CPU (about {stride}x faster, same "
                         f"measured F1)")
    if m.localizations < FEW_LOCS:
        note = f"only {m.localizations} localizations: the measures are rough"
        if choice is not None and choice["by_count"]:
            counts = [n["localizations"] for n in choice["near"]]
            note += (f", the motion most (a static structure can read as moving); the movies the "
                     f"choice follows have {min(counts)}–{max(counts)} localizations")
        notes.append(note)
    if m.precision_nm is not None and not (5.0 <= m.precision_nm <= 45.0):
        notes.append(f"precision {m.precision_nm:.0f} nm is outside 10–40 nm, where the models "
                     f"were checked")
    rng = _model_info(model).meta.get("density_range_per_um2_per_frame")
    if rng and not (0.5 * rng[0] <= m.density_field <= 2 * rng[1]):
        notes.append(f"field density {m.density_field:.3g} per µm² per frame is outside the "
                     f"model's training range {rng[0]:g}–{rng[1]:g}")
    opts = {"model": model, "frames_per_step": S, "window": W, "stride": stride}
    return Suggestion(options=opts, reasons=reasons, measures=m, notes=notes)


def apply_auto(locs, options, warn=None, keep_model: str | None = None):
    """``--auto``: the options with the settings left at their defaults replaced by the
    suggestion's (a model other than the default ``filaments``, ``keep_model``, and any frames
    per step, window or stride given, are kept). The choice is reported through ``warn``. A map
    stack has no localizations to measure: only its stride is chosen (from the device), and the
    note says so."""
    from dataclasses import fields, replace

    defaults = {f.name: f.default for f in fields(options)}
    if not isinstance(locs, Localizations):
        # a map stack: no localizations, so no density on the structure, precision, blinking
        # events or motion to measure; only the stride (it depends on the device alone) is chosen
        from .imagej import auto_stride

        kw = {}
        if options.stride == defaults["stride"]:
            kw["stride"] = auto_stride(options.device)
        if warn is not None:
            S = "the model's" if options.frames_per_step is None else str(options.frames_per_step)
            warn(f"--auto: {getattr(locs, 'source', 'the input')} is a map stack, not a "
                 f"localization table: density, precision and motion cannot be measured on it, so "
                 f"frames per step ({S}), window and model stay as given or the model's; stride "
                 f"{kw.get('stride', options.stride)} for the device. For a measured choice run "
                 f"`dblink suggest` on the localization table the maps were made from")
        return replace(options, **kw) if kw else options
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
             f"frame, structure changes by half within "
             f"{'—' if m.motion_frames is None else f'{m.motion_frames:.0f}'} frames)")
        for note in sug.notes:  # an uncertain choice, measures outside the library, ...
            warn(f"--auto: {note}")
    return replace(options, **kw) if kw else options
