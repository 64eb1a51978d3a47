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
    assert not (tmp_path / "h_confidence.png").exists()  # no confidence channel


def test_preview_marks_the_structure_of_low_confidence(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from dblink.cli import main
    from dblink.hyperstack import write_hyperstack

    v = np.zeros((4, 20, 20), np.float32)
    v[:, 5, 2:18] = 1.0     # a line trusted throughout
    v[:, 15, 2:18] = 1.0    # a line of low confidence
    conf = np.ones_like(v)
    conf[:, 13:18, :] = 0.5
    write_hyperstack(tmp_path / "h.tif", [v, conf], ["dblink", "confidence"], 40.0, 10)
    assert main(["preview", str(tmp_path / "h.tif")]) == 0
    img = np.asarray(Image.open(tmp_path / "h_confidence.png").convert("RGB")).astype(int)
    r, g = img[..., 0], img[..., 1]
    assert r[30, 20] > 200 and g[30, 20] < 50     # the low-confidence line (scale 2) is red
    assert r[10, 20] > 200 and g[10, 20] > 200    # the trusted one is white
    assert r[36, 20] < 20                          # background stays dark, low confidence or not
    assert "50.0 % of the structure lies below 0.9" in capsys.readouterr().err
    frame = Image.open(tmp_path / "h.gif")
    assert frame.size[0] > 2 * 20 * 2 - 1            # reconstruction and confidence side by side
