"""Memory: every estimate of what a reconstruction needs, and the limits it is held to.

One place for the memory model of the main job (see :func:`job_bytes`):

* the streaming engine's arrays for a time chunk (:func:`stream_bytes`), independent of the
  movie's length;
* the network's working memory per field pixel (:func:`network_bytes_per_px`), which decides
  automatic tiling (:func:`auto_tile`);
* what the output sink holds (an in-memory result holds the whole video; a TIFF file nothing);
* per-step bookkeeping (ImageJ slice labels, page offsets), counted so that a movie of absurdly
  many steps is refused up front instead of exhausting memory (:data:`MAX_STEPS`).

Limits: ``--max-memory`` (default: half the available memory, :func:`default_max_memory`).
"""
from __future__ import annotations

import math
import os
import re

from .errors import DBlinkError

#: share of the available memory a reconstruction may use when no limit is given
DEFAULT_MEMORY_SHARE = 0.5
#: bytes of bookkeeping per output step and channel (ImageJ label, TIFF page entry, plan)
STEP_OVERHEAD_BYTES = 512
#: movies of more steps than this are refused up front (10^6 steps of 10 raw frames: 28 hours
#: at 100 frames/s): a table whose frame numbers are absurd is far more likely than such a movie
MAX_STEPS = 1_000_000

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgGtT]?)(i?)[bB]?\s*$")


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable`` of /proc/meminfo, else
    ``os.sysconf``), or None where the system does not say."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def default_max_memory() -> int:
    """The default ``--max-memory`` in bytes: half the available memory (8 GiB if unknown)."""
    avail = available_memory()
    return int(avail * DEFAULT_MEMORY_SHARE) if avail else 8 * 2**30


def parse_size(text: str) -> int:
    """Parse a memory size: bytes (``1e9``) or with a unit, ``512M``, ``8G``, ``1.5GiB``, ``2TB``.

    K/M/G/T are powers of 1024 (as ``free -h`` shows them), with or without ``i`` and ``B``.
    """
    m = _SIZE_RE.match(str(text))
    if not m:
        raise DBlinkError(f"--max-memory must be a size like 8G, 512M or 2.5GiB, got {text!r}")
    value = float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")
    if not (1 <= value <= 2**60):
        raise DBlinkError(f"--max-memory must be between 1 byte and 1 EiB, got {text!r}")
    return int(value)


#: the former name (kept for scripts): :func:`parse_size`
parse_memory = parse_size


def format_bytes(n: float) -> str:
    """``123456789`` → ``117.7 MiB``."""
    try:
        n = float(n)
    except OverflowError:
        return "more than 1e308 B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


def video_bytes(n_steps: int, grid) -> int:
    """Bytes of a float32 video (T × H × W) of ``n_steps`` steps on ``grid`` (a render Grid)."""
    H, W = grid.shape
    return 4 * int(n_steps) * H * W


def stream_bytes(H: int, W: int, window: int, stride: int, chunk: int, confidence: bool) -> int:
    """Rough peak bytes of the streaming engine's arrays for time chunks of ``chunk`` steps: the
    chunk's input (+ 2·window steps of context), its estimates, and outputs waiting δ steps for
    their confidence (each with up to two alternates) — independent of the movie's length."""
    from .windows import confidence_shift

    chunk = -(-max(chunk, 1) // stride) * stride
    per_out = 3 if confidence else 1
    pending = chunk + confidence_shift(window, stride) + stride
    return 4 * H * W * (chunk + 2 * window + chunk * per_out + pending * per_out)


def default_chunk(H: int, W: int, window: int, stride: int = 1, confidence: bool = True,
                  budget: int = 1024 * 2**20) -> int:
    """Output steps per time chunk so that :func:`stream_bytes` stays within ``budget`` (at
    least ``stride`` steps, at most 1024)."""
    chunk = 1024
    while chunk > stride and stream_bytes(H, W, window, stride, chunk, confidence) > budget:
        chunk //= 2
    return max(stride, chunk)


def network_bytes_per_px(arch: str, hparams: dict, window: int, batch: int, decoded: int,
                         stride: int = 1) -> int:
    """Rough peak bytes per field pixel of one network call: ``batch`` windows of 2·window + stride
    steps (inputs, both directions' hidden states and gates) plus the head on ``decoded`` steps."""
    steps = 2 * window + max(1, stride)
    hidden = int(hparams.get("hidden", 4))
    if arch == "paper":
        per_step = 2 * 6 * hidden + 1
        head = 2 * max(hparams.get("head", [128, 256, 64]))
        return 4 * batch * (steps * per_step + decoded * head)
    # compact: encoder at full resolution per step, recurrence at a quarter of the pixels
    enc = int(hparams.get("encoder", 16))
    per_step = 1 + enc + (2 * 6 * hidden + enc) // 4
    head = 2 * int(hparams.get("decoder", 16)) + int(hparams.get("skip", 8))
    return 4 * batch * (steps * per_step + decoded * head)


def auto_tile(H: int, W: int, bytes_per_px: int, budget: int, halo: int) -> int | None:
    """A square tile size (px) whose input (tile + 2·halo on a side) needs at most ``budget``
    bytes of network working memory at ``bytes_per_px``, or None when the whole field fits."""
    if H * W * bytes_per_px <= budget:
        return None
    side = int(math.sqrt(budget / max(1, bytes_per_px)))
    return max(32, (side - 2 * halo) // 16 * 16)


def steps_overhead(n_steps: int, n_channels: int) -> int:
    """Bytes of per-step bookkeeping of a run of ``n_steps`` output steps."""
    return STEP_OVERHEAD_BYTES * int(n_steps) * max(1, n_channels)


def job_bytes(n_steps: int, H: int, W: int, window: int, stride: int, chunk: int,
              confidence: bool, held_steps: int = 0) -> int:
    """Peak bytes of a reconstruction's arrays: the engine's time chunk (:func:`stream_bytes`),
    the per-step bookkeeping, and ``held_steps`` whole output steps kept by the sink (all of them
    for an in-memory result, none for a file)."""
    C = 2 if confidence else 1
    return (stream_bytes(H, W, window, stride, chunk, confidence)
            + steps_overhead(n_steps, C) + 4 * C * H * W * int(held_steps))
