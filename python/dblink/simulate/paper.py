"""The ``paper`` domain: movies with the statistics of the original DBlink simulator (Saguy et al.).

Written from a reading of the published simulator's statistics (alonsaguy/DBlink,
``demo/DataHandlers.py``), not from its code. What it does, in render pixels (the original works on
the reconstruction grid, 40 nm at its scale 4):

* **Filaments**: the Shariff et al. random walk with the original's constants: 0.50–0.75 µm steps,
  each turning by a uniform angle within ±arccos(0.85), 10–15 µm long, starting uniformly in the
  field and stopping at its edge; with probability 5 % one filament gets a parallel copy shifted by
  a whole number of pixels (±1…±5 per axis, mostly ±1 or ±2). Drawn as 1-pixel lines.
* **Mitochondria**: star-shaped polygons of 30–49 vertices around a centre, radius
  ``r0 + A·sin(θ + φ)^20`` (r0 2–5 px, A from R/2 to R − 3 px with R = field/6): a small core with
  two long opposite lobes; filled. Some vertices breathe outwards by up to 3 px (periods of ≥ 100
  raw frames); each object moves at a constant velocity and stops where it would leave the field.
* **Motion** of filaments: a constant velocity (uniform per axis within ±``drift_nm`` per movie)
  and a constant rotation about the field centre (``rotation_deg`` per movie). The original's
  defaults are slow: ±0.002 px per raw frame and 0.0002° per raw frame at 40 nm pixels.
* **Localizations** lie on the render grid (pixel centres): per raw frame, ⌈fraction × structure
  pixels⌉ emitters, each on a uniformly chosen structure pixel offset by −1, 0 or +1 px per axis;
  20 % of emitters are followed by a satellite cluster of 1–7 localizations within ±5 px of it; and
  0–``noise_per_frame`` uniform noise localizations per raw frame.

Ground truth is the structure at the middle raw frame of each step (dblink's convention; the
original took the first frame of the step).
"""
from __future__ import annotations

import math

import numpy as np

COLLINEARITY = 0.85          # cosine of the largest turn per walk step (Shariff et al.)
STEP_NM = (500.0, 750.0)     # walk step length
LENGTH_NM = (10000.0, 15000.0)
PARALLEL_PROBABILITY = 0.05
#: probabilities of the parallel copy's shift −5 … +5 px per axis (0 never)
PARALLEL_SHIFT_P = np.array([0.05, 0.05, 0.05, 0.1, 0.25, 0.0, 0.25, 0.1, 0.05, 0.05, 0.05])
CLUSTER_PROBABILITY = 0.2    # share of emitters followed by a satellite cluster
CLUSTER_SIZE = (1, 7)        # localizations per cluster
CLUSTER_REACH_PX = 5         # cluster localizations within ± this many pixels per axis
OFFSET_PX = 1                # each localization is off its structure pixel by up to ± this
LINE_SPACING_NM = 5.0


def paper_filament_paths(rng: np.random.Generator, field_nm: tuple[float, float], n: int,
                         pixel: float) -> list[np.ndarray]:
    """``n`` walks in a field of ``field_nm`` = (width, height), origin at the top-left corner.

    Each path is (N, 2) vertices in nm; a walk stops at the field's edge. A parallel copy is
    shifted by whole render pixels of ``pixel`` nm."""
    w, h = field_nm
    max_turn = math.acos(COLLINEARITY)
    paths = []
    for _ in range(n):
        p = rng.uniform([0.0, 0.0], [w, h])
        d = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(*LENGTH_NM)
        verts, done = [p], 0.0
        while done <= length:
            d += rng.uniform(-max_turn, max_turn)
            step = rng.uniform(*STEP_NM)
            p = p + step * np.array([np.cos(d), np.sin(d)])
            done += step
            if not (0 <= p[0] < w and 0 <= p[1] < h):
                break
            verts.append(p)
        paths.append(np.array(verts))
    if paths and rng.random() < PARALLEL_PROBABILITY:
        base = paths[rng.integers(len(paths))]
        shift = rng.choice(np.arange(-5, 6), size=2, p=PARALLEL_SHIFT_P)
        paths.append(base + shift * pixel)
    return paths


def _polyline_points(path: np.ndarray, spacing: float = LINE_SPACING_NM) -> np.ndarray:
    """Points every ``spacing`` nm along a polyline (the original refines by repeated midpoints)."""
    if len(path) < 2:
        return path.reshape(-1, 2)
    seg = np.hypot(*np.diff(path, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], max(2, int(s[-1] / spacing) + 1))
    return np.column_stack([np.interp(t, s, path[:, 0]), np.interp(t, s, path[:, 1])])


def _line_mask(points: np.ndarray, shape: tuple[int, int], pixel: float) -> np.ndarray:
    H, W = shape
    c = np.floor(points[:, 0] / pixel).astype(np.int64)
    r = np.floor(points[:, 1] / pixel).astype(np.int64)
    ok = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    m = np.zeros(H * W, bool)
    m[r[ok] * W + c[ok]] = True
    return m.reshape(H, W)


def paper_filaments_gt(rng: np.random.Generator, shape: tuple[int, int], pixel: float, n: int,
                       n_steps: int, frames_per_step: int, drift_nm: float, rotation_deg: float
                       ) -> np.ndarray:
    """Ground truth (T, H, W) bool of ``n`` paper-style filaments under the original's motion.

    The velocity per axis is uniform within ±``drift_nm`` per movie; the rotation about the field
    centre is ``rotation_deg`` per movie (the sign drawn at random)."""
    H, W = shape
    paths = paper_filament_paths(rng, (W * pixel, H * pixel), n, pixel)
    pts = np.concatenate([_polyline_points(p) for p in paths]) if paths else np.zeros((0, 2))
    n_frames = n_steps * frames_per_step
    v = rng.uniform(-drift_nm, drift_nm, 2) / max(n_frames, 1)          # nm per raw frame
    omega = np.deg2rad(rotation_deg) * rng.choice([-1.0, 1.0]) / max(n_frames, 1)
    centre = np.array([W * pixel / 2, H * pixel / 2])
    gt = np.zeros((n_steps, H, W), bool)
    for k in range(n_steps):
        f = k * frames_per_step + frames_per_step // 2
        a = omega * f
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        moved = (pts - centre) @ rot.T + centre + v * f
        gt[k] = _line_mask(moved, shape, pixel)
    return gt


def _star_polygon(rng: np.random.Generator, R: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertex angles and radii (px) of one original-style mitochondrion outline."""
    n_pts = int(rng.integers(30, 50))
    theta = np.arange(n_pts) * 2 * np.pi / n_pts
    phase = theta + 2 * np.pi * rng.uniform(0, 0.5)
    amp = rng.integers(int(R / 2), max(int(R / 2) + 1, int(R) - 3))
    radius = rng.integers(2, 6) + np.abs(amp * np.sin(phase) ** 20)
    return theta, radius


def _fill_polygon(vx: np.ndarray, vy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (bool H × W) whose centres lie inside the polygon (vertices in px, even-odd rule)."""
    H, W = shape
    x0, x1 = max(0, int(np.floor(vx.min()))), min(W, int(np.ceil(vx.max())) + 1)
    y0, y1 = max(0, int(np.floor(vy.min()))), min(H, int(np.ceil(vy.max())) + 1)
    out = np.zeros(shape, bool)
    if x0 >= x1 or y0 >= y1:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
    px, py = xx.ravel()[:, None], yy.ravel()[:, None]
    ax, ay = vx[None], vy[None]
    bx, by = np.roll(vx, -1)[None], np.roll(vy, -1)[None]
    crosses = (ay > py) != (by > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = ax + (py - ay) * (bx - ax) / (by - ay)
    inside = (np.sum(crosses & (px < xc), axis=1) % 2) == 1
    out[y0:y1, x0:x1] = inside.reshape(y1 - y0, x1 - x0)
    return out


def paper_mitochondria_gt(rng: np.random.Generator, shape: tuple[int, int], n: int, n_steps: int,
                          frames_per_step: int, speed_px: float = 0.05) -> np.ndarray:
    """Ground truth (T, H, W) bool of ``n`` original-style mitochondria.

    Each moves at a constant velocity, uniform within ±``speed_px`` px per raw frame per axis
    (the original: 0.05), and stops where its centre would leave the field; a random subset of
    its vertices moves outwards by up to 3 px with periods of ≥ 100 raw frames."""
    H, W = shape
    R = max(H, W) / 6
    gt = np.zeros((n_steps, H, W), bool)
    for _ in range(n):
        theta, radius = _star_polygon(rng, R)
        c0 = rng.uniform([R, R], [max(R + 1, W - R), max(R + 1, H - R)])
        vel = rng.uniform(-speed_px, speed_px, 2)
        n_move = int(rng.integers(0, max(1, len(theta) // 2)))
        moving = rng.integers(0, len(theta), n_move)
        freq = rng.uniform(-0.01, 0.01, (2, n_move))
        frozen = None
        for k in range(n_steps):
            f = k * frames_per_step + frames_per_step // 2
            c = c0 + vel * f
            if frozen is not None or not (0 <= c[0] <= W and 0 <= c[1] <= H):
                frozen = f if frozen is None else frozen
                c = c0 + vel * max(0, frozen - frames_per_step)
            vx = c[0] + radius * np.cos(theta)
            vy = c[1] + radius * np.sin(theta)
            grow = np.floor(3 * np.abs(np.sin(2 * np.pi * freq * f)))
            np.add.at(vx, moving, grow[0])
            np.add.at(vy, moving, grow[1])
            gt[k] |= _fill_polygon(vx, vy, shape)
    return gt


def paper_localizations(rng: np.random.Generator, gt: np.ndarray, frames_per_step: int,
                        emitter_fraction: float, noise_per_frame: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Localizations of the original's emission model on the structure masks ``gt`` (T, H, W).

    Returns frame (0-based raw frame), row and column (integer render pixels) of every
    localization; each raw frame of step k uses the structure of step k."""
    T, H, W = gt.shape
    S = frames_per_step
    frames, rows, cols = [], [], []
    for k in range(T):
        pr, pc = np.nonzero(gt[k])
        n_em = int(math.ceil(len(pr) * emitter_fraction)) if len(pr) else 0
        f0 = k * S
        if n_em:
            m = n_em * S
            fr = f0 + np.repeat(np.arange(S), n_em)
            pick = rng.integers(0, len(pr), m)
            r, c = pr[pick], pc[pick]
            inner = (r > 0) & (c > 0) & (r < H - 1) & (c < W - 1)
            off = rng.integers(-OFFSET_PX, OFFSET_PX + 1, (m, 2))
            frames.append(fr[inner]); rows.append(r[inner] + off[inner, 0])
            cols.append(c[inner] + off[inner, 1])
            clus = (rng.random(m) < CLUSTER_PROBABILITY)
            far = (r > CLUSTER_REACH_PX) & (r < H - CLUSTER_REACH_PX) & \
                  (c > CLUSTER_REACH_PX) & (c < W - CLUSTER_REACH_PX)
            ci = np.nonzero(clus & far)[0]
            if ci.size:
                size = rng.integers(CLUSTER_SIZE[0], CLUSTER_SIZE[1] + 1, ci.size)
                who = np.repeat(ci, size)
                jit = rng.integers(-CLUSTER_REACH_PX, CLUSTER_REACH_PX + 1, (who.size, 2))
                frames.append(fr[who]); rows.append(r[who] + jit[:, 0]); cols.append(c[who] + jit[:, 1])
        n_noise = rng.integers(0, noise_per_frame + 1, S)
        nf = f0 + np.repeat(np.arange(S), n_noise)
        frames.append(nf); rows.append(rng.integers(0, H, nf.size)); cols.append(rng.integers(0, W, nf.size))
    cat = (lambda xs: np.concatenate(xs).astype(np.int64) if xs else np.zeros(0, np.int64))
    fr, r, c = cat(frames), cat(rows), cat(cols)
    order = np.argsort(fr, kind="stable")
    return fr[order], r[order], c[order]
