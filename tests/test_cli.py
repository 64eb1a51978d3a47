"""The command line: exit codes, one-line errors, outputs that are complete or absent."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import SHARED, write_csv
from dblink.cli import main
from dblink.hyperstack import read_hyperstack
from dblink.tables import read_localizations


def run(*args):
    return subprocess.run([sys.executable, "-m", "dblink.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_help_and_version():
    assert run("--help").returncode == 0
    out = run("--version")
    assert out.returncode == 0 and "dblink" in out.stdout
    assert "nm" in run("reconstruct", "--help").stdout


@pytest.mark.parametrize("make,extra,match", [
    (lambda d: d / "missing.csv", [], "no such file"),
    (lambda d: write_csv(d / "u.csv", '"frame","x [furlong]","y [furlong]"', [(1, 2, 3)]), [],
     "unknown unit"),
    (lambda d: write_csv(d / "px.csv", '"frame","x [px]","y [px]"', [(1, 2, 3)]), [],
     "--camera-pixel"),
    (lambda d: write_csv(d / "ok.csv", '"frame","x [nm]","y [nm]"', [(1, 20, 30)]),
     ["--roi", "1,2,3"], "X0,Y0"),
    (lambda d: write_csv(d / "ok.csv", '"frame","x [nm]","y [nm]"', [(1, 20, 30)]),
     ["--roi", "0,0,1e12,1e12"], "too large"),
    (lambda d: write_csv(d / "ok.csv", '"frame","x [nm]","y [nm]"', [(1, 20, 30)]),
     ["--model", "no-such-model"], "no model named"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, tiny_model_file, make, extra, match):
    table = make(tmp_path)
    args = ["reconstruct", table, "-o", tmp_path / "out.tif"]
    if "--model" not in extra:
        args += ["--model", tiny_model_file]
    out = run(*args, *extra)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dblink: error:") and match in lines[0]
    assert not (tmp_path / "out.tif").exists()
    assert not list(tmp_path.glob("*.part"))


def test_reconstruct_end_to_end(tmp_path, tiny_model_file, capsys):
    assert main(["simulate", "filaments", "-o", str(tmp_path / "sim"), "--size", "24",
                 "--steps", "9", "--seed", "3"]) == 0
    out = tmp_path / "out.tif"
    rc = main(["reconstruct", str(tmp_path / "sim" / "locs.csv"), "-o", str(out), "--model",
               str(tiny_model_file), "--progress", "json", "--roi", "0,0,960,960",
               "--exposure", "0.01"])
    assert rc == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    T = (read_localizations(tmp_path / "sim" / "locs.csv").frame.max() - 1) // 10 + 1
    assert events[-1]["event"] == "done" and events[-1]["steps"] == T
    assert any(e["event"] == "progress" and e["step"] == e["total"] == T for e in events)
    data, meta = read_hyperstack(out)
    assert data.shape == (T, 2, 24, 24) and np.isfinite(data).all()
    assert meta["finterval"] == pytest.approx(0.1) and meta["dblink"]["window"] == 3
    # the existing output is kept without --overwrite
    assert main(["reconstruct", str(tmp_path / "sim" / "locs.csv"), "-o", str(out), "--model",
                 str(tiny_model_file)]) == 2


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/thunderstorm-real not present")
def test_reconstruct_real_export_with_roi(tmp_path, tiny_model_file):
    out = tmp_path / "real.tif"
    res = run("reconstruct", SHARED / "ecoli_lacy_fov01.csv", "-o", out, "--model", tiny_model_file,
              "--roi", "15000,20000,5000,5000", "--progress", "none", "--frames-per-step", "100")
    assert res.returncode == 0, res.stderr
    assert "outside the ROI" in res.stderr  # reported, not silent
    data, meta = read_hyperstack(out)
    assert data.shape == (19, 2, 125, 125)
    assert meta["dblink"]["localizations_used"] > 0


def test_evaluate_prints_model_and_baseline(tmp_path, tiny_model_file):
    assert main(["simulate", "filaments", "-o", str(tmp_path / "d" / "a"), "--size", "24",
                 "--steps", "8"]) == 0
    res = run("evaluate", "--model", tiny_model_file, "--data", tmp_path / "d", "--json",
              tmp_path / "e.json", "--pictures", tmp_path / "pics")
    assert res.returncode == 0, res.stderr
    assert "model" in res.stdout and "baseline" in res.stdout and "hallucination" in res.stdout
    assert (tmp_path / "pics" / "a_panel.png").stat().st_size > 0
    assert (tmp_path / "pics" / "a_movie.gif").stat().st_size > 0
    js = json.loads((tmp_path / "e.json").read_text())
    assert 0 <= js["summary"]["baseline"]["f1"] <= 1


def test_reconstruct_timings_and_precision(tmp_path, tiny_model_file, capsys):
    assert main(["simulate", "filaments", "-o", str(tmp_path / "sim"), "--size", "16",
                 "--steps", "6", "--seed", "4"]) == 0
    table, model = str(tmp_path / "sim" / "locs.csv"), str(tiny_model_file)
    out = tmp_path / "out.tif"
    capsys.readouterr()
    assert main(["reconstruct", table, "-o", str(out), "--model", model, "--timings", "--precision",
                 "bf16", "--progress", "none"]) == 0
    line = [s for s in capsys.readouterr().err.splitlines() if s.startswith("timings:")]
    assert len(line) == 1
    for stage in ("read", "render", "network", "write", "other", "total"):
        assert stage in line[0]
    _, meta = read_hyperstack(out)
    assert meta["dblink"]["precision"] == "bf16"
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        main(["reconstruct", table, "-o", str(tmp_path / "b.tif"), "--model", model, "--precision", "fp64"])
    assert exc.value.code == 2 and "--precision" in capsys.readouterr().err
    assert main(["reconstruct", table, "-o", str(tmp_path / "t.tif"), "--model", model, "--tta", "4",
                 "--no-confidence", "--progress", "none"]) == 0
    _, meta = read_hyperstack(tmp_path / "t.tif")
    assert meta["dblink"]["tta"] == 4
    with pytest.raises(SystemExit) as exc:
        main(["reconstruct", table, "-o", str(tmp_path / "c.tif"), "--model", model, "--tta", "3"])
    assert exc.value.code == 2 and "--tta" in capsys.readouterr().err
    assert not (tmp_path / "c.tif").exists()


def test_evaluate_vary_builds_a_robustness_table(tmp_path, tiny_model_file, monkeypatch, capsys):
    from dataclasses import replace

    from dblink import evaluate

    # the preset's conditions on a smaller field and a shorter movie: the table is what is checked
    small = replace(evaluate.EVAL_SETS["filaments"], height_px=32, width_px=32, n_steps=24)
    monkeypatch.setitem(evaluate.EVAL_SETS, "filaments", small)
    js = tmp_path / "vary.json"
    assert main(["evaluate", "--model", str(tiny_model_file), "--preset", "filaments", "--n", "1",
                 "--stride", "8", "--vary", "density=0.6", "--vary", "camera_pixel=160",
                 "--json", str(js)]) == 0
    table = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")]
    assert len(table) == 4 and "| density | 0.6 |" in table[2] and "| camera_pixel | 160 |" in table[3]
    rows = json.loads(js.read_text())
    assert [(r["setting"], r["value"]) for r in rows] == [("density", 0.6), ("camera_pixel", 160)]
    assert main(["evaluate", "--model", str(tiny_model_file), "--vary", "colour=1"]) == 2
    assert "unknown setting" in capsys.readouterr().err


def test_simulated_table_in_camera_pixels_reads_back_in_nm(tmp_path):
    from dblink.evaluate import make_eval_set

    a = make_eval_set("filaments", tmp_path / "nm", 1)[0]
    b = make_eval_set("filaments", tmp_path / "px", 1, {"camera_pixel": 107.0})[0]
    assert '"x [px]"' in (b / "locs.csv").read_text().splitlines()[0]
    la, lb = read_localizations(a / "locs.csv"), read_localizations(b / "locs.csv", camera_pixel=107.0)
    np.testing.assert_allclose(lb.x, la.x, atol=1e-3)
    np.testing.assert_array_equal(lb.frame, la.frame)
    assert json.loads((b / "sim.json").read_text())["camera_pixel_nm"] == 107.0
