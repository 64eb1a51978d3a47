"""Outputs are complete or absent: Ctrl-C, SIGTERM, a full disk or a crash leave no partial file."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dblink.cli import main


def movie(path, n=20_000, frames=400, field_nm=2560.0, seed=0):
    """A random table of ``frames // 10`` steps on a 64 x 64 px field (40 nm pixels)."""
    rng = np.random.default_rng(seed)
    cols = np.column_stack([rng.integers(1, frames + 1, n), rng.uniform(0, field_nm, n),
                            rng.uniform(0, field_nm, n)])
    np.savetxt(path, cols, fmt=["%d", "%.2f", "%.2f"], delimiter=",", header="frame,x [nm],y [nm]",
               comments="")
    return path


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize("sig,code,message", [(signal.SIGTERM, 143, "dblink: terminated"),
                                              (signal.SIGINT, 130, "dblink: interrupted")])
def test_signal_mid_run_removes_the_temporary_file(tmp_path, tiny_model_file, sig, code, message):
    table = movie(tmp_path / "locs.csv")
    out = tmp_path / "out" / "rec.tif"
    out.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "dblink.cli", "reconstruct", str(table), "-o",
                             str(out), "--model", str(tiny_model_file), "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # a shell's background job (nohup, `&`) inherits SIGINT ignored, and
                            # Python then keeps ignoring it: give the child the default, as a terminal does
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stdout:  # wait until the network is running
            if json.loads(line).get("event") == "progress":
                break
        else:
            pytest.fail(f"no progress before the end: {proc.stderr.read()}")
        assert leftovers(out.parent), "the temporary output should exist while the job runs"
        proc.send_signal(sig)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    assert rc == code, stderr
    assert stderr.strip().splitlines()[-1].startswith(message)  # e.g. 'dblink: terminated (SIGTERM)'
    assert not out.exists()
    assert leftovers(out.parent) == []


def _run(tmp_path, tiny_model_file, *extra):
    table = movie(tmp_path / "locs.csv", n=500, frames=40)
    return main(["reconstruct", str(table), "-o", str(tmp_path / "rec.tif"), "--model",
                 str(tiny_model_file), "--progress", "none", *extra])


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, tiny_model_file, monkeypatch, capsys):
    import tifffile

    def full(self, *a, **k):  # the CLI streams pages through TiffWriter.write (header written)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(tifffile.TiffWriter, "write", full)
    assert _run(tmp_path, tiny_model_file) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dblink: error:") and "the disk is full" in err[-1]
    assert "nothing was written" in err[-1]
    assert not (tmp_path / "rec.tif").exists() and leftovers(tmp_path) == []


def test_a_crash_leaves_no_temporary_file(tmp_path, tiny_model_file, monkeypatch):
    import dblink.engine

    def boom(*a, **k):
        raise RuntimeError("simulated bug")
    monkeypatch.setattr(dblink.engine, "stream_infer", boom)  # what the CLI runs
    with pytest.raises(RuntimeError, match="simulated bug"):
        _run(tmp_path, tiny_model_file)
    assert not (tmp_path / "rec.tif").exists() and leftovers(tmp_path) == []


def test_keyboard_interrupt_in_process(tmp_path, tiny_model_file, monkeypatch, capsys):
    import dblink.engine

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(dblink.engine, "stream_infer", ctrl_c)  # what the CLI runs
    assert _run(tmp_path, tiny_model_file) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "dblink: interrupted"
    assert leftovers(tmp_path) == []


def test_existing_output_is_kept_without_overwrite(tmp_path, tiny_model_file, capsys):
    (tmp_path / "rec.tif").write_bytes(b"precious")
    assert _run(tmp_path, tiny_model_file) == 2
    assert "already exists (use --overwrite" in capsys.readouterr().err
    assert (tmp_path / "rec.tif").read_bytes() == b"precious"
    assert _run(tmp_path, tiny_model_file, "--overwrite") == 0
    assert (tmp_path / "rec.tif").read_bytes()[:2] == b"II" and leftovers(tmp_path) == []


def test_missing_output_folder_fails_before_the_work(tmp_path, tiny_model_file, capsys, monkeypatch):
    import dblink.engine
    monkeypatch.setattr(dblink.engine, "infer", lambda *a, **k: pytest.fail("reached infer"))
    table = movie(tmp_path / "locs.csv", n=100, frames=20)
    t0 = time.perf_counter()
    assert main(["reconstruct", str(table), "-o", str(tmp_path / "nope" / "rec.tif"), "--model",
                 str(tiny_model_file)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 30
