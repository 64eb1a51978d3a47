"""Bounded memory along the time axis, and the command line's own promises (issue 13, classes 1, 5
and 6): absurd frame numbers are refused up front, per-step bookkeeping is counted, numeric options
are checked, signals clean up, every error is one line."""
import resource
import signal
import subprocess
import sys
import time

import pytest

from conftest import write_csv

PY = sys.executable


def run_cli(*argv, limit_gb: float = 2.0, timeout: float = 120, **kw):
    """The CLI in a subprocess under an address-space limit (a runaway allocation fails fast)."""
    def cap():
        lim = int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    return subprocess.run([PY, "-m", "dblink.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap, **kw)


def one_line_error(out, *fragments):
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dblink: error: "), out.stderr[-2000:]
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("frames", [(1, 10**9), (10**8,), (1, 2, 2**50)])
def test_absurd_frame_numbers_are_refused_up_front(tmp_path, tiny_model_file, frames):
    t = write_csv(tmp_path / "t.csv", "frame,x,y", [(f, 100.0 + i, 200.0) for i, f in enumerate(frames)])
    t0 = time.perf_counter()
    out = run_cli("reconstruct", t, "-o", tmp_path / "o.tif", "--model", tiny_model_file,
                  "--max-memory", "1G", "--roi", "0,0,400,400")
    one_line_error(out, "steps of 10 frames, more than dblink handles (1,000,000)",
                   "--first-frame/--last-frame")
    assert time.perf_counter() - t0 < 60
    assert not list(tmp_path.glob("*.tif")) and not list(tmp_path.glob(".*.part"))


def test_a_time_range_selects_the_frames(tmp_path, tiny_model_file):
    """--first-frame/--last-frame: the way out of a table with a stray frame number."""
    rows = [(f, 100.0 + (f % 7) * 40, 200.0) for f in range(1, 61)] + [(10**9, 150.0, 150.0)]
    t = write_csv(tmp_path / "t.csv", "frame,x,y", rows)
    out = run_cli("reconstruct", t, "-o", tmp_path / "o.tif", "--model", tiny_model_file,
                  "--last-frame", "60", "--progress", "none")
    assert out.returncode == 0, out.stderr
    import tifffile
    assert tifffile.imread(tmp_path / "o.tif").shape[0] == 6  # 60 frames of 10 per step


def test_per_step_bookkeeping_counts_in_max_memory(tmp_path, tiny_model_file):
    """900,000 steps of a 1 px field: the per-step bookkeeping (~0.9 GB) exceeds --max-memory."""
    t = write_csv(tmp_path / "t.csv", "frame,x,y", [(1, 10.0, 10.0), (9_000_000, 10.0, 10.0)])
    out = run_cli("reconstruct", t, "-o", tmp_path / "o.tif", "--model", tiny_model_file,
                  "--max-memory", "100M", "--roi", "0,0,40,40")
    one_line_error(out, "900000 steps", "more than --max-memory 100.0 MiB")


@pytest.mark.parametrize("argv,fragment", [
    (["--exposure", "-0.02"], "--exposure must be a positive, finite number"),
    (["--exposure", "nan"], "--exposure must be a positive, finite number"),
    (["--max-memory", "1e400"], "--max-memory must be between 1 byte and 1 EiB"),
    (["--stride", "1.5"], "--stride must be a whole number"),
    (["--window", "-4"], "--window must be >= 0"),
    (["--roi", "-500,-500,0,2000"], "--roi width and height must be > 0 nm"),
    (["--tta", "3"], "invalid choice"),
])
def test_numeric_options_are_checked(tmp_path, tiny_model_file, argv, fragment):
    t = write_csv(tmp_path / "t.csv", "frame,x,y", [(1, 10.0, 10.0)])
    out = run_cli("reconstruct", t, "-o", tmp_path / "o.tif", "--model", tiny_model_file, *argv)
    assert out.returncode == 2 and fragment in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_negative_roi_is_a_value_not_an_option(tmp_path, tiny_model_file):
    t = write_csv(tmp_path / "t.csv", "frame,x,y", [(f, -100.0 + f, 50.0) for f in range(1, 40)])
    out = run_cli("reconstruct", t, "-o", tmp_path / "o.tif", "--model", tiny_model_file,
                  "--roi", "-500,-500,2000,2000", "--progress", "none")
    assert out.returncode == 0, out.stderr


def test_a_newline_in_a_file_name_keeps_the_error_on_one_line(tmp_path, tiny_model_file):
    out = run_cli("reconstruct", tmp_path / "no\nsuch.csv", "-o", tmp_path / "o.tif")
    one_line_error(out, "no\\nsuch.csv")


def test_sighup_cleans_up_like_sigterm(tmp_path, tiny_model_file):
    from dblink.cli import main
    assert main(["simulate", "filaments", "-o", str(tmp_path / "s"), "--size", "48", "--steps",
                 "400"]) == 0
    proc = subprocess.Popen([PY, "-m", "dblink.cli", "reconstruct", str(tmp_path / "s" / "locs.csv"),
                             "-o", str(tmp_path / "o.tif"), "--model", str(tiny_model_file),
                             "--window", "20", "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    for line in proc.stdout:  # wait until it is inferring
        if '"progress"' in line or '"done"' in line:
            break
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 129, err
    assert err.strip().splitlines()[-1] == "dblink: terminated (SIGHUP)"
    assert not list(tmp_path.glob("*.tif")) and not list(tmp_path.glob(".*.part"))


def test_any_line_break_in_a_column_name_keeps_the_error_on_one_line(tmp_path, capsys):
    """Not only \\n and \\r: NEL and the Unicode line separators break a line too (in Python's
    splitlines and in some terminals); a fuzzed header with one split the error in two."""
    from dblink.cli import main
    from dblink.errors import one_line

    table = tmp_path / "t.csv"
    table.write_text('frame,x [nm],"y [n\x85m\u2028]"\n1,2,3\n', encoding="utf-8")
    assert main(["suggest", str(table)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dblink: error:"), err
    assert one_line("a\x0bb\u2029c\r\nd") == "a\\x0bb\\u2029c\\r\\nd"
