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
from dataclasses import dataclass

from .errors import DBlinkError
from .modelmeta import input_channels

#: share of the available memory a reconstruction may use when no limit is given
DEFAULT_MEMORY_SHARE = 0.5
#: bytes of bookkeeping per output step and channel (ImageJ label, TIFF page entry, plan)
STEP_OVERHEAD_BYTES = 512
#: movies of more steps than this are refused up front (10^6 steps of 10 raw frames: 28 hours
#: at 100 frames/s): a table whose frame numbers are absurd is far more likely than such a movie
MAX_STEPS = 1_000_000

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgGtT]?)(i?)[bB]?\s*$")


def _proc_kib(path: str, field: str) -> int | None:
    """Bytes of a ``Field:  N kB`` line of a /proc file, or None where there is none."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _process_limits() -> list[int]:
    """Bytes this process may still allocate under its own limits: the address-space limit
    (``ulimit -v``) less what is mapped, and a container's cgroup v2 ``memory.max`` less its use."""
    out = []
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1):
            out.append(max(0, soft - (_proc_kib("/proc/self/status", "VmSize") or 0)))
    except (ImportError, ValueError, OSError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as fh:
                out.append(max(0, int(limit) - int(fh.read().strip())))
    except (OSError, ValueError):
        pass
    return out


def available_memory() -> int | None:
    """Bytes of memory available to new allocations: ``MemAvailable`` of /proc/meminfo (else
    ``os.sysconf``), or less where the process's address-space limit or its container's memory
    limit leaves less; None where the system does not say."""
    avail = _proc_kib("/proc/meminfo", "MemAvailable")
    if avail is None:
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            avail = None
    limits = _process_limits()
    if limits:
        return min(limits + ([avail] if avail is not None else []))
    return avail


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
    chunk's input (+ 2·window steps of context), its estimates, and outputs waiting up to 2δ
    steps for their confidence samples (each with up to two alternates) — independent of the
    movie's length."""
    from .windows import confidence_shift

    chunk = -(-max(chunk, 1) // stride) * stride
    per_out = 3 if confidence else 1
    pending = chunk + 2 * confidence_shift(window, stride) + stride
    return 4 * H * W * (chunk + 2 * window + chunk * per_out + pending * per_out)


def default_chunk(H: int, W: int, window: int, stride: int = 1, confidence: bool = True,
                  budget: int = 1024 * 2**20) -> int:
    """Output steps per time chunk so that :func:`stream_bytes` stays within ``budget`` (at
    least ``stride`` steps, at most 1024)."""
    chunk = 1024
    while chunk > stride and stream_bytes(H, W, window, stride, chunk, confidence) > budget:
        chunk //= 2
    return max(stride, chunk)


def process_rss() -> int | None:
    """Bytes this process holds in memory now (its resident set), or None where unknown."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def peak_rss() -> int | None:
    """Peak resident memory of this process so far (bytes): ``VmHWM`` of /proc/self/status, the
    high-water mark of this program's own memory (``ru_maxrss`` also counts the parent's memory a
    freshly started child inherited before exec), else ``ru_maxrss``."""
    hwm = _proc_kib("/proc/self/status", "VmHWM")
    if hwm is not None:
        return hwm
    try:
        import resource
        import sys

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r if sys.platform == "darwin" else r * 1024
    except (ImportError, OSError):
        return None


def largest_call(arch: str | None, hparams: dict, n_steps: int, window: int, stride: int,
                 confidence: bool, every: int, batch: int, pixels: int) -> int:
    """Peak bytes of the largest network call a movie really makes (:func:`network_bytes`): only
    consecutive windows of one signature share a call, and a window decodes its kept steps plus the
    confidence samples' alternates that fall in it — so a call of ``batch`` windows that each decode
    the most steps may never happen (with sampled confidence, windows with alternates mostly run
    alone). Found by walking the batches of a movie long enough to hold every interior pattern."""
    from .windows import iter_batches, iter_windows

    period = stride * every // math.gcd(stride, every)
    steps = min(n_steps, 4 * window + 2 * stride + 2 * period * max(1, batch))
    best, seen = 0, set()
    for bt in iter_batches(iter_windows(steps, window, stride, confidence, every), batch):
        w = bt[0]
        shape = (len(bt), w.stop - w.start, len(w.keep) + len(w.alt))
        if shape not in seen:
            seen.add(shape)
            best = max(best, network_bytes(arch, hparams, shape[1], shape[2], pixels, shape[0]))
    return best


def network_bytes(arch: str | None, hparams: dict, n_in: int, n_decoded: int, pixels: int,
                  batch: int = 1) -> int:
    """Peak bytes of one network call: ``batch`` windows of ``n_in`` steps over ``pixels`` px (a
    tile's input, halo included) decoding ``n_decoded`` steps. Counted from the tensors the
    forward pass holds at its largest moment (float32; PyTorch frees each temporary as soon as the
    next layer has it): the recurrence (inputs, both directions' layer outputs, their stacking)
    or the head (a convolution's input and output, then its ReLU's copy), times a measured
    allocator factor (:data:`NETWORK_FACTOR`; ``tools/memory_calibration.py``)."""
    n, P = max(1, int(n_in)), max(1, int(n_decoded))
    h = int(hparams.get("hidden", 4 if arch == "paper" else 24))
    if arch == "paper":
        chans = [2 * h] + [int(c) for c in hparams.get("head", [128, 256, 64])] + [1]
        head = max(max(a + b, 2 * b) for a, b in zip(chans[:-1], chans[1:])) + 2 * h
        per_window = max(n * (2 + 5 * h), n + P * head)
    else:  # compact: full-resolution encoder and head, recurrence on a quarter of the pixels
        enc, dec, skip = (int(hparams.get(k, d)) for k, d in
                          (("encoder", 16), ("decoder", 16), ("skip", 8)))
        c_in = input_channels(hparams.get("mean_input", False), hparams.get("local_mean", 0))
        encoder = n * (c_in + 1 + 2 * enc)
        recurrence = n * (c_in + (enc + 5 * h) / 4)
        head = n * c_in + P * (2 * (dec + skip) + 2 * dec + h / 2)
        per_window = max(encoder, recurrence, head)
    return int(NETWORK_FACTOR * 4 * batch * pixels * per_window)


#: measured peak RSS over the counted tensors (oneDNN's reordered copies, the allocator)
NETWORK_FACTOR = 1.0
#: what a run adds besides its arrays and the network's tensors (the first network call's
#: one-off allocations: oneDNN primitives, thread pools; the TIFF writer): 27-29 MiB measured on
#: 64 x 64 px fields, where the network needs 20 MiB (``tools/memory_calibration.py``)
RUNTIME_BYTES = 26 * 2**20


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


#: budget of one time chunk of the engine's arrays (less under a small --max-memory)
CHUNK_BUDGET = 1024 * 2**20
#: tile sizes (render px) tried, largest first, when a field does not fit untiled
TILE_SIZES = (2048, 1536, 1024, 768, 512, 384, 256, 192, 128, 96, 64, 48, 32)


@dataclass(frozen=True)
class MemoryPlan:
    """How a job runs within its memory limit, and what it needs (bytes)."""

    tile: int | None  # px, None: the whole field at once
    batch: int | None  # windows per call asked for (at most this many run; None: the engine measures)
    chunk: int  # output steps per time chunk
    arrays: int  # the engine's chunk arrays, per-step bookkeeping, what the sink holds
    network: int  # one network call (0 where it runs on a GPU)
    halo_cost: float  # share of extra pixels computed because of the tiles' halos (0: untiled)

    @property
    def total(self) -> int:
        return self.arrays + self.network + RUNTIME_BYTES


def _tile_pixels(H: int, W: int, tile: int | None, halo: int) -> tuple[int, float]:
    """(pixels of the largest tile input, share of extra pixels computed over the field)."""
    if tile is None or tile >= max(H, W):
        return H * W, 0.0
    from .tiling import plan_tiles

    tiles = plan_tiles(H, W, tile, halo)
    sizes = [(t.Y1 - t.Y0) * (t.X1 - t.X0) for t in tiles]
    return max(sizes), sum(sizes) / (H * W) - 1


def plan_memory(arch: str | None, hparams: dict, n_steps: int, H: int, W: int, window: int,
                stride: int, confidence: bool, limit: int, *, batch: int | None = None,
                tile: int | None = None, auto_batch: int = 4, halo: int = 32,
                every: int | None = None,
                held_steps: int = 0, network_on_host: bool = True) -> MemoryPlan:
    """Choose tiles, batch and time chunk for a job of ``n_steps`` steps of H × W px within
    ``limit`` bytes (``--max-memory``), from :func:`network_bytes` and :func:`job_bytes`.

    ``tile``: the user's tile size (0: never tile), or None to choose: the whole field with
    ``auto_batch`` windows per call if that fits, else one window per call, else the largest tile
    (:data:`TILE_SIZES`) that fits — tiles only when the untiled job does not fit, since their
    halos cost time. ``every``: the confidence's sampling (steps; None: its default). ``batch``: the user's windows per call (None: ``auto_batch``, or 1 if that
    is what fits). The plan's :attr:`~MemoryPlan.total` may still exceed ``limit``: the caller
    refuses such a job."""
    chunk = default_chunk(H, W, window, stride, confidence, budget=min(CHUNK_BUDGET, limit // 2))
    chunk = min(chunk, -(-n_steps // stride) * stride)
    arrays = job_bytes(n_steps, H, W, window, stride, chunk, confidence, held_steps)
    from .windows import confidence_every_default

    every = every or confidence_every_default(window, stride)

    def option(t: int | None, b: int) -> MemoryPlan:
        px, cost = _tile_pixels(H, W, t, halo)
        net = largest_call(arch, hparams, n_steps, window, stride, confidence and window > 0,
                           every, b, px) if network_on_host else 0
        return MemoryPlan(t if t and t < max(H, W) else None, b, chunk, arrays, net, cost)

    b0 = batch if batch is not None else auto_batch
    if tile is not None:
        return option(tile or None, b0)
    batches = [b0] if batch is not None or b0 == 1 else [b0, 1]
    tries = [option(None, b) for b in batches]
    tries += [option(t, b) for t in TILE_SIZES if t < max(H, W) for b in batches]
    fitting = [p for p in tries if p.total <= limit]
    if not fitting:  # nothing fits: the smallest, for the caller's message
        return min(tries, key=lambda p: p.total)
    return fitting[0]
