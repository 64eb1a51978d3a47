"""Throughput of `dblink batch` (files per minute) with 0 (in-process), 1, 2 ... Dask workers.

    .venv/bin/python tools/bench_batch.py --files 12 --size 48 --steps 30 --workers 0,1,2 --stride 8

Simulates FILES movies once (dblink simulate filaments, seeds 0..FILES-1), then runs
`dblink batch IN -o OUT_k --workers k` for each k in a fresh process (start-up, cluster start
and model loads included: what a user waits for), and prints wall seconds, files per minute, the
median seconds per file from the summary CSV, and the load average before and after each run
(the machine may be shared: a load above its core count slows every figure).
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=12)
    p.add_argument("--size", type=int, default=48, help="field side in render pixels")
    p.add_argument("--steps", type=int, default=30, help="time points per movie")
    p.add_argument("--workers", default="0,1,2", help="comma-separated worker counts (0 = in-process)")
    p.add_argument("--model", default="filaments")
    p.add_argument("--stride", default="8")
    p.add_argument("--keep", help="folder to keep the movies and outputs in (default: a temporary one)")
    a = p.parse_args()
    root = Path(a.keep or tempfile.mkdtemp(prefix="dblink-bench-batch-"))
    inp = root / "in"
    inp.mkdir(parents=True, exist_ok=True)
    dblink = [sys.executable, "-m", "dblink.cli"]
    for i in range(a.files):
        if not (inp / f"m{i:03d}.csv").exists():
            subprocess.run(dblink + ["simulate", "filaments", "-o", str(root / "sim"), "--size", str(a.size),
                                     "--steps", str(a.steps), "--seed", str(i)], check=True,
                           capture_output=True)
            os.replace(root / "sim" / "locs.csv", inp / f"m{i:03d}.csv")
    print(f"dblink batch: {a.files} movies of {a.size} x {a.size} px, {a.steps} steps, model {a.model}, "
          f"stride {a.stride}; {os.cpu_count()} cores")
    print(f"{'workers':>8} {'wall s':>8} {'files/min':>10} {'s/file (median)':>16} {'load before':>12} {'load after':>11}")
    for k in [int(w) for w in a.workers.split(",")]:
        out = root / f"out_{k}"
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        r = subprocess.run(dblink + ["batch", str(inp), "-o", str(out), "--model", a.model, "--stride",
                                     a.stride, "--workers", str(k), "--overwrite", "--progress", "none"],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
        with open(out / "dblink_batch.csv", newline="") as fh:
            secs = [float(row["seconds"]) for row in csv.DictReader(fh) if row["status"] == "done"]
        print(f"{k:>8} {wall:>8.1f} {60 * len(secs) / wall:>10.2f} {statistics.median(secs):>16.2f} "
              f"{load0:>12.2f} {os.getloadavg()[0]:>11.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
