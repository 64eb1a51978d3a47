"""Absurd geometry is refused before anything is allocated, with the size it would have needed."""
import numpy as np
import pytest

from conftest import write_csv
from dblink.errors import DBlinkError
from dblink.tables import Localizations
from dblink.memory import default_max_memory, format_bytes, job_bytes, parse_memory, video_bytes
from dblink.pipeline import reconstruct_table
from dblink.render import Grid, render


def locs_of(*rows):
    f, x, y = (np.array(v) for v in zip(*rows))
    return Localizations(frame=f.astype(np.int64), x=x.astype(float), y=y.astype(float), source="t")


@pytest.fixture
def no_infer(monkeypatch):
    """Fail loudly if a refused job reaches the network."""
    import dblink.engine
    monkeypatch.setattr(dblink.engine, "infer", lambda *a, **k: pytest.fail("reached infer"))


def test_coordinates_of_1e12_nm_with_the_default_roi(tiny_model_file, no_infer):
    locs = locs_of((1, 0.0, 0.0), (2, 1e12, 500.0))
    with pytest.raises(DBlinkError, match=r"2\.5e\+10 x 13 pixels is too large: one time point "
                                          r"alone would need 1\.2 TiB"):
        reconstruct_table(locs, tiny_model_file)


@pytest.mark.parametrize("x", [1e300, 1.7e308])
def test_coordinates_near_the_float_limit(tiny_model_file, no_infer, x):
    locs = locs_of((1, -x, 0.0), (2, x, 500.0))
    with pytest.raises(DBlinkError, match="too large"):
        reconstruct_table(locs, tiny_model_file)


def test_video_over_max_memory_is_refused_before_allocation(tiny_model_file, no_infer, monkeypatch):
    import dblink.render
    allocated = []
    real_zeros = np.zeros
    monkeypatch.setattr(dblink.render.np, "zeros", lambda *a, **k: allocated.append(a) or real_zeros(*a, **k))
    # 1000 steps of 250 x 250 px: 250 MB per video, about 2.5 GB with confidence
    locs = locs_of((1, 0.0, 0.0), (10_000, 9_999.0, 9_999.0))
    g = Grid(0.0, 0.0, 10_000.0, 10_000.0, 40.0)
    assert video_bytes(1000, g) == 250_000_000
    # in memory: the whole result (2 channels, 477 MiB) + one time chunk of the engine + per-step
    # bookkeeping (test_memory_model checks such estimates against measured peaks)
    need = job_bytes(1000, 250, 250, 3, 1, 1, True, held_steps=1000)
    assert format_bytes(need) == "484.5 MiB"
    # ... plus the network's working memory (one call on the whole field, or a tile)
    with pytest.raises(DBlinkError, match=r"would need about (4[89]\d|[56]\d\d)\.\d MiB \(1000 steps "
                                          r"of 250 x 250 pixels kept in memory, 7-step windows\), "
                                          r"more than --max-memory 400\.0 MiB"):
        reconstruct_table(locs, tiny_model_file, max_memory=400 * 2**20)
    with pytest.raises(DBlinkError, match=r"more than --max-memory 200\.0 MiB"):
        reconstruct_table(locs, tiny_model_file, max_memory=200 * 2**20, confidence=False)
    with pytest.raises(DBlinkError, match=r"rendered video would need 238\.4 MiB \(1000 steps"):
        render(locs, g, 10, max_bytes=100 * 2**20)
    assert allocated == []


def test_default_max_memory_is_a_share_of_the_machine():
    m = default_max_memory()
    assert 2**20 < m
    with open("/proc/meminfo") as fh:
        total = int(next(l for l in fh if l.startswith("MemTotal:")).split()[1]) * 1024
    assert m <= total


@pytest.mark.parametrize("text,value", [("8G", 8 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", 1.5 * 2**30),
                                        ("2TB", 2 * 2**40), ("1e9", 10**9), ("100k", 102400)])
def test_parse_memory(text, value):
    assert parse_memory(text) == int(value)


@pytest.mark.parametrize("text", ["", "lots", "-1G", "0", "8 GB RAM"])
def test_parse_memory_refuses(text):
    with pytest.raises(DBlinkError, match="--max-memory"):
        parse_memory(text)


def test_format_bytes():
    assert format_bytes(512) == "512 B" and format_bytes(3 * 2**30) == "3.0 GiB"


@pytest.mark.parametrize("kw,match", [
    ({"pixel_size": 0.0}, "--pixel-size must be a positive, finite number, got 0.0"),
    ({"pixel_size": -10.0}, "--pixel-size must be a positive"),
    ({"pixel_size": float("nan")}, "--pixel-size must be a positive"),
    ({"pixel_size": 1e-300}, "too large"),
    ({"frames_per_step": 0}, "--frames-per-step must be >= 1, got 0"),
    ({"frames_per_step": -3}, "--frames-per-step must be >= 1"),
    ({"frames_per_step": 2.5}, "--frames-per-step must be a whole number, got 2.5"),
    ({"first_frame": 0}, "--first-frame must be >= 1"),
    ({"window": -1}, "--window must be >= 0"),
    ({"stride": 0}, "--stride must be >= 1"),
    ({"batch": 0}, "--batch must be >= 1"),
    ({"roi": "0,0,0,100"}, "must be > 0"),
    ({"roi": "0,0,inf,100"}, "finite"),
    ({"exposure": -0.02}, "--exposure must be a positive, finite number"),
    ({"exposure": float("nan")}, "--exposure must be a positive, finite number"),
    ({"max_memory": "1e400"}, "--max-memory must be between 1 byte and 1 EiB"),
    ({"pixel_sise": 10}, "unknown option 'pixel_sise' \\(did you mean pixel_size\\?\\)"),
    ({"windw": 3}, "unknown option 'windw'"),
])
def test_bad_options_are_refused_before_work(tiny_model_file, no_infer, kw, match):
    locs = locs_of((1, 10.0, 10.0), (30, 500.0, 500.0))
    with pytest.raises(DBlinkError, match=match):
        reconstruct_table(locs, tiny_model_file, **kw)


def test_a_window_longer_than_the_movie_is_clipped_with_a_warning(tiny_model_file):
    locs = locs_of((1, 10.0, 10.0), (15, 300.0, 300.0))  # 2 steps, window ±3
    notes = []
    res = reconstruct_table(locs, tiny_model_file, progress="none", warn=notes.append)
    assert res.reconstruction.video.shape[0] == 2
    assert any("longer than the movie" in n for n in notes)


def test_cli_max_memory_option(tmp_path, tiny_model_file):
    import subprocess
    import sys
    # the CLI streams in time chunks (memory flat in the movie's length): refused is a field
    # whose windows alone exceed the limit (5000 x 5000 px, 100 MB per step)
    t = write_csv(tmp_path / "t.csv", "frame,x,y", [(1, 0, 0), (1, 199_990, 199_990)])
    out = subprocess.run([sys.executable, "-m", "dblink.cli", "reconstruct", str(t), "-o",
                          str(tmp_path / "o.tif"), "--model", str(tiny_model_file), "--max-memory",
                          "10M"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("dblink: error:") and len(out.stderr.strip().splitlines()) == 1
    assert "more than --max-memory 10.0 MiB" in out.stderr
    assert not list(tmp_path.glob("*.tif")) and not list(tmp_path.glob(".*.part"))
