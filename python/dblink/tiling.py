"""Big fields: split the render grid into tiles with a halo, run each, keep its core.

A tile's *core* is the part of the field whose output it supplies; its *input* is the core plus a
halo of ``halo`` render pixels on each side (clipped at the field edge, where the untiled network
sees its zero padding too). An output pixel whose receptive field fits inside its tile's input is
exactly what the untiled network computes.

Receptive field of a recurrent conv net: a ConvLSTM cell with kernel k adds k//2 pixels per layer
*and per time step* (the hidden state at step t has seen its neighbours' state at t − 1), so over a
window of T steps the exact radius is ``k//2 · (layers + T − 1)`` at the recurrence's resolution,
plus the encoder and head. For the shipped model (±25 steps) that is 109 px, but the influence of
far pixels decays fast (forget gates, sparse inputs). Measured with the shipped filaments model
(96 × 96 px simulated filaments, 40 steps, ±25-step windows, stride 8, tiles of 48 px; max abs
difference of tiled vs untiled output, which lies in [0, 1]):

    halo (px)      0        8        16       24       32
    max |diff|   5.6e-1   5.5e-2   1.2e-3   5.6e-5   2.1e-6
    mean |diff|  4.5e-3   1.3e-4   7.5e-6   1.5e-7   5.2e-9

(the first two on 128 × 128 px, 60 steps, tiles of 64 px); the confidence channel differs by about
as much. The error falls about 20–25× per 8 px.
Cost: a tile of P px computes (P + 2·halo)² pixels, e.g. ×1.56 for P = 256 at halo 32, ×1.41 at
halo 24; a receptive-field halo (109 px) would cost ×3.4. ``halo = receptive_radius(...)`` makes
tiling exact (up to float rounding, tested); :data:`DEFAULT_HALO` is the practical choice.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DBlinkError

#: default halo in render pixels when tiling: tiled vs untiled output of the shipped filaments
#: model (±25 steps, 40 nm) differs by 2e-6 max abs here, 6e-5 at 24 px (curve above). Measured
#: for ``compact``; the ``paper`` net's receptive field grows as fast (2 px per step) but no trained
#: paper model ships to measure its decay (``receptive_radius`` gives the exact halo).
DEFAULT_HALO = 32


@dataclass(frozen=True)
class Tile:
    """One tile: core rows [y0, y1) × cols [x0, x1), input rows [Y0, Y1) × cols [X0, X1) (px)."""

    y0: int
    y1: int
    x0: int
    x1: int
    Y0: int
    Y1: int
    X0: int
    X1: int

    @property
    def crop(self) -> tuple[slice, slice]:
        """The core inside the tile's input array."""
        return (slice(self.y0 - self.Y0, self.y1 - self.Y0), slice(self.x0 - self.X0, self.x1 - self.X0))


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def plan_tiles(H: int, W: int, tile: int | None, halo: int, align: int = 1) -> list[Tile]:
    """Tiles of ``tile`` × ``tile`` px (rounded up to a multiple of ``align``) covering H × W, with
    ``halo`` px of context on each side (rounded up to a multiple of ``align``, so every input origin
    is a multiple of ``align``: CompactNet halves the resolution, its tiles need even origins).
    ``tile`` None, or a tile covering the field, gives one tile: the whole field."""
    if tile is not None and tile < 1:
        raise DBlinkError(f"--tile must be >= 1 px, got {tile}")
    if halo < 0:
        raise DBlinkError(f"the tile halo must be >= 0 px, got {halo}")
    if tile is None or tile >= max(H, W):
        return [Tile(0, H, 0, W, 0, H, 0, W)]
    tile, halo = _round_up(tile, align), _round_up(halo, align)
    out = []
    for y0 in range(0, H, tile):
        for x0 in range(0, W, tile):
            y1, x1 = min(H, y0 + tile), min(W, x0 + tile)
            out.append(Tile(y0, y1, x0, x1, max(0, y0 - halo), min(H, y1 + halo),
                            max(0, x0 - halo), min(W, x1 + halo)))
    return out


def receptive_radius(arch: str, hparams: dict, steps: int) -> int:
    """Exact spatial receptive-field radius (render px) of a network over a window of ``steps``
    steps: beyond it, input cannot change an output pixel at all."""
    k = int(hparams.get("kernel", 5 if arch == "paper" else 3)) // 2
    layers = int(hparams.get("layers", 2 if arch == "paper" else 1))
    recurrent = k * (layers + max(1, steps) - 1)
    if arch == "paper":
        head = hparams.get("head", [128, 256, 64])
        return recurrent + (len(head) + 1) * (int(hparams.get("head_kernel", 5)) // 2)
    if arch == "compact":
        # encoder 3×3 + 3×3/2 (2 px), recurrence at half resolution (×2), transposed conv (2 px),
        # head 3×3 (1 px), +2 px for the stride-2 grid alignment
        return 2 + 2 * recurrent + 2 + 1 + 2
    raise DBlinkError(f"unknown architecture {arch!r}: cannot compute its receptive field")


def tile_align(arch: str | None) -> int:
    """Tile origins must be multiples of this (2 for CompactNet's half-resolution recurrence)."""
    return 2 if arch == "compact" else 1


#: tile sizes tried for sparse fields (render px)
SPARSE_TILE_SIZES = (64, 96, 128, 192, 256)


def sparse_tile(occupied: np.ndarray, halo: int, align: int = 1, gain: float = 0.7,
                sizes: tuple[int, ...] = SPARSE_TILE_SIZES) -> tuple[int | None, float]:
    """A tile size for a sparse field, from ``occupied`` (H, W; True where any localization falls
    during the movie): the engine skips windows without localizations (:meth:`.engine._Runner.sparse`),
    so tiles whose input (core + halo) stays empty cost nothing, while occupied ones pay for their
    halo. Returns (tile, cost): the size whose occupied tile inputs cover the fewest pixels, and
    that cost as a fraction of the untiled field's pixels; tile is None unless the cost is below
    ``gain`` (tiling then saves at least 1 − gain of the network's work)."""
    H, W = occupied.shape
    ii = np.zeros((H + 1, W + 1), dtype=np.int64)
    ii[1:, 1:] = occupied.astype(np.int64).cumsum(0).cumsum(1)
    best: tuple[int | None, float] = (None, 1.0)
    for size in sizes:
        if size >= max(H, W):
            continue
        area = 0
        for t in plan_tiles(H, W, size, halo, align):
            n = ii[t.Y1, t.X1] - ii[t.Y0, t.X1] - ii[t.Y1, t.X0] + ii[t.Y0, t.X0]
            if n:
                area += (t.Y1 - t.Y0) * (t.X1 - t.X0)
        if area / (H * W) < best[1]:
            best = (size, area / (H * W))
    return best if best[1] < gain else (None, best[1])
