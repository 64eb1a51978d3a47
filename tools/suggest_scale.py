"""Time and peak memory of ``dblink.suggest.suggest`` on a large synthetic table.

    .venv/bin/python tools/suggest_scale.py [N_LOCS] [N_FRAMES]     # default 2,000,000 and 20,000

The table: N_LOCS localizations on 200 straight lines in a 40 × 40 µm field (20 nm scatter), frames
drawn uniformly; it prints the seconds suggest took and the process's peak resident memory.
"""
import resource
import sys
import time

import numpy as np

from dblink.suggest import suggest
from dblink.tables import Localizations


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    frames = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    rng = np.random.default_rng(0)
    f = np.sort(rng.integers(1, frames + 1, n))
    t, k = rng.random(n), rng.integers(0, 200, n)
    a = rng.random((200, 4)) * 40000
    x = a[k, 0] + t * (a[k, 2] - a[k, 0]) + rng.normal(0, 20, n)
    y = a[k, 1] + t * (a[k, 3] - a[k, 1]) + rng.normal(0, 20, n)
    locs = Localizations(frame=f, x=x, y=y, source="synthetic")
    t0 = time.perf_counter()
    s = suggest(locs, device="cpu")
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"suggest: {n:,} localizations, {frames:,} frames: {dt:.1f} s, peak RSS {rss:.0f} MiB; "
          f"proposed {s.options}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
