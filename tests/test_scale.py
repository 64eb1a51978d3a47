"""Scale: a 4-million-row table is read and rendered with memory proportional to its arrays."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

N_ROWS = 4_000_000
FRAMES, FIELD_NM, PIXEL_NM, S = 1000, 20_000.0, 40.0, 10  # 100 steps of 500 x 500 px


def write_big_table(path, n=N_ROWS, seed=0, chunk=1_000_000):
    """Write ``frame,x [nm],y [nm]`` rows as fixed-width text (27 bytes each), formatted with numpy
    digit arithmetic (np.savetxt would take minutes). Returns the first row's values."""
    rng = np.random.default_rng(seed)
    first = None
    with open(path, "wb") as fh:
        fh.write(b"frame,x [nm],y [nm]\n")
        for s in range(0, n, chunk):
            m = min(chunk, n - s)
            f = rng.integers(1, FRAMES + 1, m)
            x = rng.integers(0, int(FIELD_NM * 1000), m)  # in thousandths of a nm
            y = rng.integers(0, int(FIELD_NM * 1000), m)
            if first is None:
                first = (int(f[0]), x[0] / 1000, y[0] / 1000)
            rows = np.empty((m, 27), dtype=np.uint8)
            rows[:, 0:6] = (f[:, None] // 10 ** np.arange(5, -1, -1)) % 10 + 48
            for start, v in ((7, x), (17, y)):
                digits = (v[:, None] // 10 ** np.arange(7, -1, -1)) % 10 + 48
                rows[:, start:start + 5] = digits[:, :5]
                rows[:, start + 5] = ord(".")
                rows[:, start + 6:start + 9] = digits[:, 5:]
            rows[:, [6, 16]] = ord(",")
            rows[:, 26] = ord("\n")
            fh.write(rows.tobytes())
    return first


MEASURE = r"""
import json, sys, time
import numpy as np
from dblink.memory import peak_rss
from dblink.tables import read_localizations
from dblink.render import Grid, render

def rss_kb():
    with open("/proc/self/status") as fh:
        return int(next(l for l in fh if l.startswith("VmRSS:")).split()[1])

base = rss_kb()
t0 = time.perf_counter()
locs = read_localizations(sys.argv[1])
t1 = time.perf_counter()
grid = Grid(0.0, 0.0, float(sys.argv[2]), float(sys.argv[2]), float(sys.argv[3]))
res = render(locs, grid, int(sys.argv[4]))
t2 = time.perf_counter()
cols = locs.frame.nbytes + locs.x.nbytes + locs.y.nbytes
print(json.dumps({"base_kb": base, "peak_kb": peak_rss() // 1024,
                  "columns_bytes": cols, "video_bytes": res.video.nbytes, "n": len(locs),
                  "first": [int(locs.frame[0]), float(locs.x[0]), float(locs.y[0])],
                  "inside": res.n_inside, "sum": float(res.video.sum()), "shape": list(res.video.shape),
                  "read_s": t1 - t0, "render_s": t2 - t1}))
"""


@pytest.mark.extra  # ~6 s: make test-extra (CI runs it)
def test_millions_of_rows_read_and_render_in_proportional_memory(tmp_path):
    path = tmp_path / "big.csv"
    t0 = time.perf_counter()
    first = write_big_table(path)
    t_write = time.perf_counter() - t0
    assert path.stat().st_size == 20 + 27 * N_ROWS
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(FIELD_NM), str(PIXEL_NM),
                          str(S)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    m = json.loads(out.stdout)
    assert m["n"] == N_ROWS and m["inside"] == N_ROWS and m["sum"] == N_ROWS
    assert m["shape"] == [FRAMES // S, 500, 500]
    assert m["first"][0] == first[0]
    np.testing.assert_allclose(m["first"][1:], first[1:], atol=1e-6)
    need = m["columns_bytes"] + m["video_bytes"]  # 96 MB of columns + 100 MB of video
    used = (m["peak_kb"] - m["base_kb"]) * 1024
    report = (f"{N_ROWS / 1e6:.0f}M rows ({path.stat().st_size / 2**20:.0f} MiB of text): write {t_write:.1f} s, "
              f"read {m['read_s']:.1f} s, render {m['render_s']:.1f} s, peak above imports "
              f"{used / 2**20:.0f} MiB for {need / 2**20:.0f} MiB of arrays ({used / need:.2f}x)")
    print(report)
    assert used < 3 * need, report  # columns + video + bounded working memory, no copy of the text
