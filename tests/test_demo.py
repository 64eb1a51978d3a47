"""The demo path (small version): simulate → CSV → reconstruct with a model file → files + metrics."""
import json
from dataclasses import replace

from dblink import demo
from dblink.hyperstack import read_hyperstack


def test_demo_writes_everything(tmp_path, tiny_model_file, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_CONFIG", replace(demo.DEMO_CONFIG, height_px=32, width_px=32,
                                                     n_steps=12))
    m = demo.run_demo(tmp_path / "out", model=str(tiny_model_file), progress="none")
    for key in ("locs", "hyperstack", "ground_truth", "panel", "animation", "metrics"):
        assert (tmp_path / "out" / m["files"][key].split("/")[-1]).stat().st_size > 0
    data, meta = read_hyperstack(tmp_path / "out" / "dblink.tif")
    assert data.shape[1:] == (2, 32, 32)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(saved["model"]) >= {"fidelity", "hallucination", "f1"}
    assert 0 <= saved["baseline"]["f1"] <= 1


def test_bundled_model_is_listed_and_loads():
    from dblink.export import list_models, load_model

    names = [m.name for m in list_models()]
    assert "filaments" in names and "mitochondria" in names
    m = load_model("filaments")
    assert m.pixel_size == 40.0 and m.frames_per_step == 10 and m.window == 25
    assert m.meta["validation"]["f1"] > 0.5


def test_preview_writes_a_time_coloured_projection(tmp_path):
    import numpy as np
    from PIL import Image

    from dblink.cli import main
    from dblink.hyperstack import write_hyperstack

    v = np.zeros((3, 10, 12), np.float32)
    v[0, 2, 2] = v[2, 7, 9] = 1.0
    write_hyperstack(tmp_path / "h.tif", [v], ["dblink"], 40.0, 10)
    assert main(["preview", str(tmp_path / "h.tif")]) == 0
    img = np.asarray(Image.open(tmp_path / "h_timecolor.png"))
    assert img[4, 4, 0] > 200 and img[4, 4, 2] < 50     # the first frame is red
    assert img[14, 18, 2] > 200 and img[14, 18, 0] < 120  # the last is blue
    assert Image.open(tmp_path / "h.gif").n_frames == 3
