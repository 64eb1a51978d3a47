"""dblink resolution --over-time: decorrelation per time point of a hyperstack (CSV + PNG), and the
FRC per time point of two reconstructions from alternating halves of the localizations."""
import csv

import numpy as np
import pytest

from dblink.cli import main
from dblink.errors import DBlinkError
from dblink.hyperstack import write_hyperstack
from dblink.resolution import decorrelation_over_time, frc_over_time

from test_resolution import _bandlimited


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_over_time_follows_a_changing_cutoff(tmp_path, capsys):
    """Frames band-limited at k0 = 0.3, 0.6, 0.45 and one empty frame: each time point's
    decorrelation resolution is 2 px / k0 within 10 %, the empty one has a note, not a number."""
    rng = np.random.default_rng(3)
    px, ks = 20.0, [0.3, 0.6, 0.45]
    frames = [_bandlimited(rng, 128, k, 20.0) for k in ks] + [np.zeros((128, 128))]
    tif = tmp_path / "rec.tif"
    write_hyperstack(tif, [np.stack(frames).astype(np.float32)], ["dblink"], pixel_size_nm=px,
                     frames_per_step=10, exposure_s=0.02)
    assert main(["resolution", "--over-time", str(tif)]) == 0
    out = capsys.readouterr().out
    assert "3 of 4 time points" in out
    rows = _rows(tmp_path / "rec_resolution_over_time.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert [float(r["time_s"]) for r in rows] == pytest.approx([0.0, 0.2, 0.4, 0.6])  # 10 frames x 20 ms
    for r, k in zip(rows, ks):
        assert float(r["decorrelation_nm"]) == pytest.approx(2 * px / k, rel=0.10)
    assert rows[3]["decorrelation_nm"] == "" and "constant" in rows[3]["note"]
    from PIL import Image
    with Image.open(tmp_path / "rec_resolution_over_time.png") as im:
        assert im.format == "PNG"


def test_frc_over_time_of_two_noisy_copies():
    rng = np.random.default_rng(5)
    sig = np.stack([_bandlimited(rng, 96, 0.5, 20.0) for _ in range(2)])
    a = sig + rng.normal(0, sig.std() * 0.3, sig.shape)
    b = sig + rng.normal(0, sig.std() * 0.3, sig.shape)
    v, limited, notes = frc_over_time(a, b, 10.0)
    assert np.all(np.isfinite(v)) and not limited.any() and notes == ["", ""]
    assert np.all((v > 20.0) & (v < 80.0))  # between the grid's limit and far coarser
    v, limited, notes = frc_over_time(sig, sig[:1], 10.0)  # identical frames; a missing one
    assert v[0] == 20.0 and limited[0] and "at most 20 nm" in notes[0]
    assert np.isnan(v[1]) and "no localizations" in notes[1]
    with pytest.raises(DBlinkError, match="video"):
        decorrelation_over_time(np.ones((8, 8)), 10.0)


def test_halves_run_two_reconstructions(tmp_path, tiny_model_file, capsys):
    assert main(["simulate", "filaments", "-o", str(tmp_path / "sim"), "--size", "24", "--steps", "12",
                 "--seed", "2", "--density", "1.0"]) == 0
    table = tmp_path / "sim" / "locs.csv"
    tif = tmp_path / "rec.tif"
    assert main(["reconstruct", str(table), "-o", str(tif), "--model", str(tiny_model_file),
                 "--progress", "none"]) == 0
    capsys.readouterr()
    assert main(["resolution", "--over-time", str(tif), "--halves", str(table), "--model",
                 str(tiny_model_file), "-o", str(tmp_path / "h")]) == 0
    assert "FRC of halves" in capsys.readouterr().out
    rows = _rows(tmp_path / "h_resolution_over_time.csv")
    assert len(rows) == 12 and {"frc_nm", "frc_at_limit", "decorrelation_nm"} <= set(rows[0])
    assert any(r["frc_nm"] for r in rows)


@pytest.mark.parametrize("args,match", [
    (["--over-time", "{tif}", "--frame", "2"], "does not apply to --over-time"),
    (["--over-time", "{tif}", "--image", "{tif}"], "one of"),
    (["--image", "{tif}", "--halves", "{tif}"], "--halves applies to --over-time"),
    (["--over-time", "{tif}", "--halves", "{tif}"], "no dblink parameters"),
    (["--over-time", "{tif}", "--model", "filaments"], "apply to --halves"),
    (["--over-time", "{tmp}/missing.tif"], "no such file"),
    (["--over-time", "{tif}", "--channel", "3"], "--channel must be between 1 and 1"),
])
def test_over_time_errors_are_one_line(tmp_path, capsys, args, match):
    tif = tmp_path / "rec.tif"
    write_hyperstack(tif, [np.ones((3, 32, 32), np.float32)], ["reconstruction"], pixel_size_nm=20.0,
                     frames_per_step=10)
    argv = ["resolution"] + [a.format(tif=tif, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    assert not list(tmp_path.glob("*over_time*"))
