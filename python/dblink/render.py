"""Render localizations into a video of super-resolved localization maps.

Geometry (docs/ARCHITECTURE.md): a grid is ``roi = (x0, y0, width, height)`` in nm plus a pixel size in nm.
Pixel (r, c) covers x in [x0 + c*p, x0 + (c+1)*p) and y in [y0 + r*p, y0 + (r+1)*p);
W = ceil(width / p), H = ceil(height / p). Step k (0-based) sums raw frames
f0 + k*S ... f0 + (k+1)*S - 1 (frames are 1-based).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import DBlinkError
from .memory import default_max_memory, format_bytes, video_bytes
from .tables import Localizations

#: refuse render grids larger than this many pixels per frame (a 40 µm field at 10 nm is 1.6e7)
MAX_PIXELS_PER_FRAME = 64_000_000
#: localizations processed per pass in :func:`render` (bounds its temporaries to ~70 MB)
RENDER_CHUNK = 1 << 20
#: video pixels counted per bincount in :func:`render` (bounds its int64 counts to 32 MiB)
COUNT_BLOCK = 1 << 22


@dataclass(frozen=True)
class Grid:
    """A render grid: ROI origin and size in nm, pixel size in nm."""

    x0: float
    y0: float
    width: float
    height: float
    pixel_size: float

    def __post_init__(self) -> None:
        if not (self.pixel_size > 0 and math.isfinite(self.pixel_size)):
            raise DBlinkError(f"pixel size must be a positive number of nm, got {self.pixel_size}")
        if not all(math.isfinite(v) for v in (self.x0, self.y0, self.width, self.height)):
            raise DBlinkError(f"ROI values must be finite numbers of nm, got ({self.x0}, {self.y0}, "
                              f"{self.width}, {self.height})")
        if not (self.width > 0 and self.height > 0):
            raise DBlinkError(f"ROI width and height must be > 0 nm, got {self.width} x {self.height}")
        nx, ny = self.width / self.pixel_size, self.height / self.pixel_size  # floats: never overflow
        if math.isfinite(nx) and math.isfinite(ny):
            ny, nx = (float(v) for v in self.shape)
        if not nx * ny <= MAX_PIXELS_PER_FRAME:
            raise DBlinkError(f"render grid of {nx:.4g} x {ny:.4g} pixels is too large: one time "
                              f"point alone would need {format_bytes(4 * nx * ny)} (ROI {self.width:.4g} "
                              f"x {self.height:.4g} nm at {self.pixel_size:g} nm, limit "
                              f"{MAX_PIXELS_PER_FRAME / 1e6:g} Mpx per time point); choose a smaller "
                              f"--roi or a larger --pixel-size")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in render pixels."""
        return (max(1, math.ceil(self.height / self.pixel_size - 1e-9)),
                max(1, math.ceil(self.width / self.pixel_size - 1e-9)))

    @classmethod
    def around(cls, locs: Localizations, pixel_size: float) -> "Grid":
        """The bounding box of the localizations (nm), snapped outward to whole render pixels."""
        if len(locs) == 0:
            raise DBlinkError(f"{locs.source}: no localizations to render")
        if not (pixel_size > 0 and math.isfinite(pixel_size)):
            raise DBlinkError(f"pixel size must be a positive number of nm, got {pixel_size}")
        lo_x, hi_x = float(locs.x.min()), float(locs.x.max())
        lo_y, hi_y = float(locs.y.min()), float(locs.y.max())
        span = max(hi_x - lo_x, hi_y - lo_y)
        if not math.isfinite(span) or not all(math.isfinite(v / pixel_size) for v in (lo_x, hi_x, lo_y, hi_y)):
            raise DBlinkError(f"{locs.source}: the localizations span {span:.4g} nm, too large to "
                              f"render at {pixel_size:g} nm; choose a --roi")
        x0 = math.floor(lo_x / pixel_size) * pixel_size
        y0 = math.floor(lo_y / pixel_size) * pixel_size
        x1 = (math.floor(hi_x / pixel_size) + 1) * pixel_size
        y1 = (math.floor(hi_y / pixel_size) + 1) * pixel_size
        try:
            return cls(float(x0), float(y0), float(x1 - x0), float(y1 - y0), float(pixel_size))
        except DBlinkError as exc:
            raise DBlinkError(f"{locs.source}: bounding box of the localizations: {exc}") from None

    @classmethod
    def parse_roi(cls, text: str, pixel_size: float) -> "Grid":
        """Parse ``X0,Y0,W,H`` (nm)."""
        try:
            x0, y0, w, h = (float(v) for v in text.split(","))
        except ValueError:
            raise DBlinkError(f"--roi must be X0,Y0,WIDTH,HEIGHT in nm, got '{text}'") from None
        return cls(x0, y0, w, h, pixel_size)


@dataclass
class RenderResult:
    """A rendered localization-map video and what was left out."""

    video: np.ndarray  # float32 (T, H, W): localization counts per render pixel and step
    grid: Grid
    frames_per_step: int
    first_frame: int
    n_inside: int
    n_outside_roi: int
    n_outside_time: int


def n_steps_for(locs: Localizations, frames_per_step: int, first_frame: int = 1) -> int:
    """Number of whole or partial steps from ``first_frame`` to the last frame of the table."""
    _check_time(frames_per_step, first_frame)
    last = locs.frame_range[1]
    return max(0, (last - first_frame) // frames_per_step + 1)


def _check_time(frames_per_step: int, first_frame: int) -> None:
    if not (isinstance(frames_per_step, (int, np.integer)) and frames_per_step >= 1):
        raise DBlinkError(f"frames per step must be a whole number >= 1, got {frames_per_step}")
    if not (isinstance(first_frame, (int, np.integer)) and first_frame >= 1):
        raise DBlinkError(f"first frame must be a whole number >= 1 (frames are 1-based), "
                          f"got {first_frame}")


def _pixel_indices(locs: Localizations, rows: slice, grid: Grid, frames_per_step: int,
                   first_frame: int, n_steps: int) -> tuple[np.ndarray, int, int]:
    """Flat video indices (step, row, col) of the rows' localizations inside the ROI and the
    steps, and how many lay outside the ROI (within the steps) and outside the steps."""
    H, W = grid.shape
    p = grid.pixel_size
    f = locs.frame[rows]
    c = np.floor((locs.x[rows] - grid.x0) / p)
    r = np.floor((locs.y[rows] - grid.y0) / p)
    k = (f - first_frame) // frames_per_step
    in_roi = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    in_time = (f >= first_frame) & (k < n_steps)
    keep = in_roi & in_time
    idx = (k[keep] * H + r[keep].astype(np.int64)) * W + c[keep].astype(np.int64)
    return idx, int((~in_roi & in_time).sum()), int((~in_time).sum())


def render(locs: Localizations, grid: Grid, frames_per_step: int, first_frame: int = 1,
           n_steps: int | None = None, max_bytes: int | None = None) -> RenderResult:
    """Count localizations per render pixel and per step of ``frames_per_step`` raw frames.

    Localizations outside the ROI or before ``first_frame`` / after the last step are dropped
    and counted in the result. The video (float32, T × H × W) is refused before it is allocated
    when it would need more than ``max_bytes`` (default: :func:`default_max_memory`). Working
    memory beyond the video: 8 bytes per localization plus bounded chunks.
    """
    _check_time(frames_per_step, first_frame)
    if n_steps is None:
        n_steps = n_steps_for(locs, frames_per_step, first_frame)
    if n_steps < 0:
        raise DBlinkError(f"the number of steps must be >= 0, got {n_steps}")
    H, W = grid.shape
    need = video_bytes(n_steps, grid)
    limit = default_max_memory() if max_bytes is None else int(max_bytes)
    if need > limit:
        raise DBlinkError(f"the rendered video would need {format_bytes(need)} ({n_steps} steps of "
                          f"{W} x {H} pixels, float32), more than the memory limit "
                          f"{format_bytes(limit)} (--max-memory); use a smaller --roi, a larger "
                          f"--pixel-size or more --frames-per-step")
    n = len(locs)
    G = n_steps * H * W
    idx = np.empty(n, dtype=np.int64)
    m = n_outside_roi = n_outside_time = 0
    for s in range(0, n, RENDER_CHUNK):
        kept, out_roi, out_time = _pixel_indices(locs, slice(s, min(n, s + RENDER_CHUNK)), grid,
                                                 frames_per_step, first_frame, n_steps)
        idx[m:m + kept.size] = kept
        m += kept.size
        n_outside_roi += out_roi
        n_outside_time += out_time
    idx = idx[:m]
    video = np.zeros(G, dtype=np.float32)
    if G <= COUNT_BLOCK:
        video[:] = np.bincount(idx, minlength=G)
    else:  # count a block of pixels at a time: no int64 copy of a large video
        for a in range(0, G, COUNT_BLOCK):
            b = min(G, a + COUNT_BLOCK)
            sel = idx[(idx >= a) & (idx < b)] - a
            video[a:b] = np.bincount(sel, minlength=b - a)
    return RenderResult(video=video.reshape(n_steps, H, W), grid=grid,
                        frames_per_step=int(frames_per_step), first_frame=int(first_frame),
                        n_inside=m, n_outside_roi=n_outside_roi, n_outside_time=n_outside_time)


class StepRenderer:
    """Render any step range of a table on demand, for long movies (``renderer(a, b)`` is
    ``render(...).video[a:b]``, without the whole video in memory).

    Localizations are ordered by frame once (no copy when the table already is, as ThunderSTORM
    writes it); the counts of :class:`RenderResult` come from one pass over the table.
    """

    def __init__(self, locs: Localizations, grid: Grid, frames_per_step: int, first_frame: int = 1,
                 n_steps: int | None = None) -> None:
        _check_time(frames_per_step, first_frame)
        self.locs, self.grid = locs, grid
        self.frames_per_step, self.first_frame = int(frames_per_step), int(first_frame)
        self.n_steps = n_steps_for(locs, frames_per_step, first_frame) if n_steps is None else n_steps
        f = locs.frame
        self._order = None if len(f) < 2 or bool(np.all(f[:-1] <= f[1:])) else \
            np.argsort(f, kind="stable")
        self._frames = f if self._order is None else f[self._order]
        self.n_inside = self.n_outside_roi = self.n_outside_time = 0
        for s in range(0, len(locs), RENDER_CHUNK):
            kept, out_roi, out_time = _pixel_indices(locs, slice(s, min(len(locs), s + RENDER_CHUNK)),
                                                     grid, self.frames_per_step, self.first_frame,
                                                     self.n_steps)
            self.n_inside += kept.size
            self.n_outside_roi += out_roi
            self.n_outside_time += out_time

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, H, W) of the whole video."""
        return (self.n_steps, *self.grid.shape)

    def __call__(self, a: int, b: int) -> np.ndarray:
        """Steps [a, b) as float32 (b − a, H, W)."""
        S, f0 = self.frames_per_step, self.first_frame + a * self.frames_per_step
        i0, i1 = np.searchsorted(self._frames, [f0, f0 + (b - a) * S], side="left")
        rows = slice(int(i0), int(i1)) if self._order is None else self._order[i0:i1]
        sub = Localizations(frame=self.locs.frame[rows], x=self.locs.x[rows], y=self.locs.y[rows],
                            source=self.locs.source)
        return render(sub, self.grid, S, first_frame=f0, n_steps=b - a, max_bytes=2**62).video
