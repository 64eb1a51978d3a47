"""Progress reporting for long work: a tqdm bar, JSON lines (for the Fiji plugin), or nothing."""
from __future__ import annotations

import json
import sys
import time
from typing import Callable, Union

#: a progress mode (``bar``, ``json``, ``none``) or a callback ``f(done, total)``; a callback may
#: raise to cancel the work (the Fiji bridge does this when Esc is pressed)
ProgressSpec = Union[str, Callable[[int, int], None]]


class Progress:
    """Report progress over ``total`` units (output steps, training iterations...).

    ``mode``: ``bar`` (tqdm on stderr), ``json`` (one JSON object per update on stdout:
    ``{"event": "progress", "stage": ..., "step": done, "total": total, "eta_s": ...,
    "rate": units per second}``), ``none``, or a callable ``f(done, total)``.
    """

    def __init__(self, total: int, mode: ProgressSpec = "bar", desc: str = "", unit: str = "step",
                 min_interval_s: float = 0.25) -> None:
        self._callback = mode if callable(mode) else None
        if self._callback is not None:
            mode = "none"
        if mode not in ("bar", "json", "none"):
            raise ValueError(f"progress mode must be bar, json or none, not {mode!r}")
        self.total, self.mode, self.desc, self.done = total, mode, desc, 0
        self._fraction = 0.0  # of a unit, see advance()
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._min_interval = min_interval_s
        self._bar = None
        if mode == "bar":
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._callback is not None:
            self._callback(self.done, self.total)
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "json":
            now = time.perf_counter()
            if now - self._last >= self._min_interval or self.done >= self.total:
                self._last = now
                elapsed = now - self.t0
                rate = self.done / elapsed if elapsed > 0 else 0.0
                eta = (self.total - self.done) / rate if rate > 0 else None
                emit({"event": "progress", "stage": self.desc, "step": self.done, "total": self.total,
                      "eta_s": None if eta is None else round(eta, 2), "rate": round(rate, 3)})

    def advance(self, amount: float) -> None:
        """Add a fraction of a unit (e.g. one tile's share of a step); whole units are reported."""
        self._fraction += amount
        whole = int(self._fraction + 1e-9)
        if whole > 0:
            self._fraction -= whole
            self.update(whole)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def emit(obj: dict) -> None:
    """Write one JSON line to stdout and flush (the Fiji plugin reads these as they come)."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
