"""The demo path (small version): simulate → CSV → reconstruct with a model file → files + metrics."""
import json
from dataclasses import replace

from dblink import demo
from dblink.io import read_hyperstack


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
    assert "filaments" in names
    m = load_model("filaments")
    assert m.pixel_size == 40.0 and m.frames_per_step == 10 and m.window == 25
    assert m.meta["validation"]["f1"] > 0.5
