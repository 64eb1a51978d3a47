"""dblink batch: the plan (files, folders, globs, names), a local Dask cluster of 2 workers giving
the outputs of sequential `dblink reconstruct`, isolated failures, the summary CSV, resuming after
a killed run, and the Fiji batch macro that runs it through `exec`."""
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from conftest import ROOT, write_csv

PY = sys.executable
distributed = pytest.importorskip("distributed", reason="dask[distributed] not installed (pip install 'dblink[batch]')")


def _table(path: Path, seed: int, n_frames: int = 120, n: int = 60, size_nm: float = 900.0) -> Path:
    """A small random table (nm, 1-based frames) with a fixed bounding box."""
    rng = np.random.default_rng(seed)
    rows = [(1, 0.0, 0.0), (n_frames, size_nm, size_nm)]  # pins the field and the frame range
    for f, x, y in zip(rng.integers(1, n_frames + 1, n), rng.uniform(0, size_nm, n), rng.uniform(0, size_nm, n)):
        rows.append((int(f), round(float(x), 1), round(float(y), 1)))
    rows.sort()
    return write_csv(path, "frame,x [nm],y [nm]", rows)


@pytest.fixture
def tables(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    _table(d / "a.csv", 1)
    _table(d / "b.csv", 2)
    write_csv(d / "bad.csv", '"frame","x [furlong]","y [furlong]"', [(1, 2, 3)])
    return d


def _summary(path: Path) -> dict:
    with open(path, newline="") as fh:
        return {Path(r["input"]).name: r for r in csv.DictReader(fh)}


def _cli(*args, **kw):
    return subprocess.run([PY, "-m", "dblink.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=kw.pop("timeout", 240), **kw)


# ----------------------------------------------------------------------------- the plan
def test_inputs_folders_globs_names(tmp_path):
    from dblink.batch import TABLE_SUFFIXES, expand_inputs, plan, table_suffixes
    from dblink.errors import DBlinkError

    assert set(TABLE_SUFFIXES) <= set(table_suffixes())
    for sub in ("c1", "c2"):
        (tmp_path / "exp" / sub).mkdir(parents=True)
        (tmp_path / "exp" / sub / "locs.csv").write_text("frame,x,y\n1,2,3\n")
    (tmp_path / "x.tsv").write_text("frame\tx\ty\n1\t2\t3\n")
    (tmp_path / "notes.md").write_text("not a table")
    (tmp_path / ".x.tsv.123-h.abc.part").write_text("")
    got = expand_inputs([tmp_path, str(tmp_path / "exp" / "**" / "*.csv"), tmp_path / "x.tsv"])
    assert [p.name for p in got] == ["x.tsv", "locs.csv", "locs.csv"]  # folder, glob; no duplicate
    items = plan(got, tmp_path / "out")
    assert [i.output.name for i in items] == ["x.tif", "c1_locs.tif", "c2_locs.tif"]
    (tmp_path / "x.h5").write_bytes(b"")
    assert [i.output.name for i in plan(expand_inputs([tmp_path]), tmp_path)] == ["x_h5.tif", "x_tsv.tif"]
    # an explicitly named file is taken whatever its extension; a folder's outputs are not inputs
    assert expand_inputs([tmp_path / "notes.md"])[0].name == "notes.md"
    with pytest.raises(DBlinkError, match="no such file or folder"):
        expand_inputs([tmp_path / "missing.csv"])
    with pytest.raises(DBlinkError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.hdf9")])
    assert [p.name for p in expand_inputs([str(tmp_path / "*.md")])] == ["notes.md"]  # a glob takes what it matches
    with pytest.raises(DBlinkError, match="no tables"):
        expand_inputs([tmp_path / "exp"])
    with pytest.raises(DBlinkError, match="empty"):
        expand_inputs([""])


def test_macro_option_text():
    from dblink.batch import macro_options, parse_macro_text
    from dblink.errors import DBlinkError

    assert parse_macro_text("model=[my model.pt] stride=4 skip_confidence roi=[0,0,5,5]") == {
        "model": "my model.pt", "stride": "4", "skip_confidence": "true", "roi": "0,0,5,5"}
    o, keys = macro_options("model=filaments stride=4 skip_confidence exposure=0.02 window=0 workers=2 overwrite")
    assert (o.stride, o.confidence, o.exposure, o.window) == (4, False, 0.02, None)
    assert keys == {"workers": 2, "overwrite": True}
    with pytest.raises(DBlinkError, match="not an option of a batch"):
        macro_options("table=[x.csv] save=[y.tif]")


# ----------------------------------------------------------------------------- the cluster
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="2 workers need 2 cores")
def test_two_workers_match_reconstruct_and_isolate_a_failure(tables, tmp_path, tiny_model_file):
    from dblink.batch import usable_cpus
    from dblink.cli import main

    out = tmp_path / "out"
    r = _cli("batch", tables, "-o", out, "--model", tiny_model_file, "--workers", 2, "--progress", "none")
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("dblink: error: 1 of 3 inputs failed") and "Traceback" not in r.stderr
    assert "2 written, 0 skipped (done before), 1 failed" in r.stderr and "2 worker" in r.stderr
    rows = _summary(out / "dblink_batch.csv")
    assert list(rows) == ["a.csv", "b.csv", "bad.csv"]
    assert rows["bad.csv"]["status"] == "failed" and "unknown unit" in rows["bad.csv"]["message"]
    assert "\n" not in rows["bad.csv"]["message"]
    # the sequential CLI with the thread count a worker has (1 ULP differs between thread counts)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, usable_cpus() // 2))
    try:
        for name in ("a", "b"):
            assert rows[f"{name}.csv"]["status"] == "done" and rows[f"{name}.csv"]["device"] == "cpu"
            ref = tmp_path / f"{name}_ref.tif"
            assert main(["reconstruct", str(tables / f"{name}.csv"), "-o", str(ref), "--model",
                         str(tiny_model_file), "--progress", "none"]) == 0
            got, want = tifffile.imread(out / f"{name}.tif"), tifffile.imread(ref)
            np.testing.assert_array_equal(got, want)
            T, C, H, W = got.shape
            assert rows[f"{name}.csv"]["shape"] == f"{T}x{H}x{W}"
    finally:
        torch.set_num_threads(threads)
    assert not list(out.glob(".*.part"))


@pytest.mark.slow  # 10-30 s on 2 cores: a cluster start, a kill and 2-3 movies of 200 steps
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="2 workers need 2 cores")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_resume_after_a_killed_run(tmp_path, tiny_model_file, sig):
    """SIGKILL the whole batch (client, scheduler, workers) once the first output is there: the
    next run keeps what was finished, removes the dead run's temporary files and does the rest.
    SIGTERM to the batch alone: it stops its workers, leaves no temporary file, says so in one
    line (exit 143); the next run resumes the same way."""
    d = tmp_path / "in"
    d.mkdir()
    for i, name in enumerate("abcd"):  # 200 steps each: two run while the first is written
        _table(d / f"{name}.csv", 10 + i, n_frames=2000, n=800, size_nm=1600.0)
    out = tmp_path / "out"
    p = subprocess.Popen([PY, "-m", "dblink.cli", "batch", str(d), "-o", str(out), "--model",
                          str(tiny_model_file), "--workers", "2", "--progress", "none"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        t0 = time.time()
        while not list(out.glob("*.tif")) and time.time() - t0 < 120 and p.poll() is None:
            time.sleep(0.02)
        if sig == signal.SIGKILL:
            os.killpg(p.pid, signal.SIGKILL)
        else:
            p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert p.returncode == 143 and err.decode().strip().splitlines()[-1] == "dblink: terminated (SIGTERM)"
        assert "Traceback" not in err.decode() and not list(out.glob(".*.part"))
    first = sorted(f.name for f in out.glob("*.tif"))
    assert 1 <= len(first) < 4, first
    for f in first:  # what a killed run left is complete
        assert tifffile.imread(out / f).shape == (200, 2, 41, 41)
    from dblink.cli import main

    assert main(["batch", str(d), "-o", str(out), "--model", str(tiny_model_file), "--workers", "0",
                 "--progress", "none"]) == 0
    rows = _summary(out / "dblink_batch.csv")
    assert {n for n, r in rows.items() if r["status"] == "skipped"} == {f.replace(".tif", ".csv") for f in first}
    assert all(r["status"] in ("done", "skipped") for r in rows.values())
    assert sorted(f.name for f in out.glob("*.tif")) == ["a.tif", "b.tif", "c.tif", "d.tif"]
    assert not list(out.glob(".*.part"))


def test_in_process_skips_done_outputs_and_overwrite_redoes_them(tables, tmp_path, tiny_model_file, capsys):
    from dblink.cli import main

    out = tmp_path / "out"
    args = ["batch", str(tables / "a.csv"), str(tables / "b.csv"), "-o", str(out), "--model",
            str(tiny_model_file), "--workers", "0", "--progress", "none"]
    assert main(args) == 0
    stamp = (out / "a.tif").stat().st_mtime_ns
    # what a run killed while writing b.tif leaves: its temporary file (process gone), no b.tif
    (out / "b.tif").unlink()
    dead = subprocess.Popen(["true"])
    dead.wait()
    from dblink.files import _host_tag
    part = out / f".b.tif.{dead.pid}-{_host_tag()}.x1y2z3.part"
    part.write_bytes(b"half a TIFF")
    assert main(args) == 0
    assert not part.exists() and tifffile.imread(out / "b.tif").shape[0] == 12
    assert [r["status"] for r in _summary(out / "dblink_batch.csv").values()] == ["skipped", "done"]
    assert main(args) == 0
    rows = _summary(out / "dblink_batch.csv")
    assert [r["status"] for r in rows.values()] == ["skipped", "skipped"]
    assert rows["a.csv"]["shape"] == "12x23x23" and rows["a.csv"]["device"] == "cpu"
    assert (out / "a.tif").stat().st_mtime_ns == stamp
    assert main(args + ["--overwrite", "--progress", "json"]) == 0
    assert [r["status"] for r in _summary(out / "dblink_batch.csv").values()] == ["done", "done"]
    lines = capsys.readouterr().out.strip().splitlines()
    assert '"event": "file"' in lines[-2] and '"written": 2' in lines[-1]


def test_usage_errors_are_one_line(tables, tmp_path, monkeypatch, capsys):
    from dblink import batch
    from dblink.cli import main

    cases = [
        (["batch", str(tmp_path / "nothing*.csv"), "-o", str(tmp_path / "o")], "match"),
        (["batch", str(tables), "-o", str(tmp_path / "o"), "--workers", "-1"], "--workers must be between 0 and"),
        (["batch", str(tables), "-o", str(tmp_path / "o"), "--workers", "2", "--scheduler", "tcp://x:1"],
         "not both"),
        (["batch", str(tables), "-o", str(tables / "a.csv")], "not a folder"),
        (["batch", str(tables), "-o", str(tmp_path / "o"), "--stride", "0"], "--stride"),
    ]
    for case in cases + [None]:
        argv, msg = case or (None, None)
        if case is None:  # without Dask: one line that says how to get it
            monkeypatch.setattr(batch, "have_dask", lambda: False)
            argv, msg = ["batch", str(tables), "-o", str(tmp_path / "o"), "--workers", "1"], "pip install 'dblink[batch]'"
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("dblink: error:") and msg in err[0], (argv, err)


# ----------------------------------------------------------------------------- Fiji
IJ_JAR = Path(os.environ.get("DBLINK_IJ_JAR", "/usr/share/java/ij.jar"))


@pytest.mark.skipif(not IJ_JAR.is_file() or shutil.which("java") is None,
                    reason=f"ImageJ 1.x not installed: no {IJ_JAR} (apt install libij-java)")
def test_the_fiji_batch_macro_runs_dblink_batch(tables, tmp_path, tiny_model_file):
    """macros/dblink_batch.ijm in headless ImageJ: one `dblink batch` call through exec()."""
    from dblink.cli import main

    inp = tmp_path / "my data [1]"
    shutil.copytree(tables, inp)
    out = tmp_path / "out put"
    arg = f"input=[{inp}] output=[{out}] python=[{PY}] workers=0 model=[{tiny_model_file}] stride=1"
    r = subprocess.run(["java", "-Djava.awt.headless=true", "-cp", str(IJ_JAR), "ij.ImageJ", "-batch",
                        str(ROOT / "macros" / "dblink_batch.ijm"), arg],
                       capture_output=True, text=True, timeout=240)
    log = r.stdout + r.stderr
    assert "DBlink batch: 2 written, 0 skipped (done before), 1 failed" in log, log
    assert "bad.csv" in log and "unknown unit" in log
    rows = _summary(out / "dblink_batch.csv")
    assert [r["status"] for r in rows.values()] == ["done", "done", "failed"]
    ref = tmp_path / "ref.tif"
    assert main(["reconstruct", str(tables / "a.csv"), "-o", str(ref), "--model", str(tiny_model_file),
                 "--progress", "none"]) == 0
    np.testing.assert_array_equal(tifffile.imread(out / "a.tif"), tifffile.imread(ref))


def test_other_formats_and_a_map_stack(tmp_path, tiny_model_file):
    """The batch reads what `reconstruct` reads: a ShareLoc .smlm from a folder scan, a map-stack
    TIFF from a glob (a folder scan leaves TIFFs out), with what each reader says in the summary."""
    from dblink.cli import main

    src = ROOT / "tests" / "data" / "formats"
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(src / "shareloc.smlm", d)
    shutil.copy(src / "deepstorm_maps.tif", d)
    out = tmp_path / "out"
    assert main(["batch", str(d), str(d / "*.tif"), "-o", str(out), "--model", str(tiny_model_file),
                 "--workers", "0", "--progress", "none"]) == 0
    rows = _summary(out / "dblink_batch.csv")
    assert list(rows) == ["shareloc.smlm", "deepstorm_maps.tif"]
    assert "ShareLoc" in rows["shareloc.smlm"]["message"] and "map stack" in rows["deepstorm_maps.tif"]["message"]
    assert tifffile.imread(out / "deepstorm_maps.tif").shape[0] == 6
