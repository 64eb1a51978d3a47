"""The network and the model file: paper configuration, TorchScript round trip without dblink."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import original_state_dict
from dblink.errors import DBlinkError
from dblink.export import load_model, save_model
from dblink.model import build_model, count_parameters


def test_paper_architecture_matches_the_original_layout():
    net = build_model("paper")
    sd = net.state_dict()
    assert sd["forward_net.cell_list.0.conv.weight"].shape == (16, 1 + 4, 5, 5)
    assert sd["forward_net.cell_list.1.conv.weight"].shape == (16, 4 + 4, 5, 5)
    assert sd["reverse_net.cell_list.1.conv.weight"].shape == (16, 4 + 4, 5, 5)
    assert [sd[f"conv_net.{i}.weight"].shape[:2] for i in (0, 2, 4, 6)] == \
        [(128, 8), (256, 128), (64, 256), (1, 64)]


@pytest.mark.parametrize("arch", ["paper", "compact"])
def test_head_on_a_subset_of_steps(arch):
    torch.manual_seed(0)
    net = build_model(arch, **({"head": [8, 8, 8]} if arch == "paper" else {})).eval()
    x = torch.rand(2, 7, 15, 13)
    full = net(x)
    part = net(x, torch.tensor([1, 5]))
    assert full.shape == (2, 7, 15, 13) and part.shape == (2, 2, 15, 13)
    torch.testing.assert_close(part, full[:, [1, 5]])


def test_backward_pass_sees_the_future():
    torch.manual_seed(0)
    net = build_model("compact", hidden=4).eval()
    x = torch.zeros(1, 3, 16, 16)
    x2 = x.clone()
    x2[0, 2, 8, 8] = 5.0  # a localization only at the last step changes the first output...
    with torch.no_grad():
        assert (net(x2)[0, 0] - net(x)[0, 0]).abs().max() > 1e-6
        for p in net.reverse_net.parameters():
            p.zero_()  # ...through the backward pass alone
        assert torch.equal(net(x2)[0, 0], net(x)[0, 0])


def test_torchscript_round_trip_without_dblink(tmp_path):
    torch.manual_seed(0)
    net = build_model("compact", hidden=4, encoder=4, decoder=4, skip=2).eval()
    path = save_model(net, tmp_path / "m.pt", {"name": "t", "pixel_size_nm": 40.0,
                                                "frames_per_step": 10, "window": 5})
    import zipfile
    roots = {n.split("/")[0] for n in zipfile.ZipFile(path).namelist()}
    assert roots == {"archive"}, roots  # not the temporary file's name
    x = torch.rand(1, 6, 12, 12)
    expected = net(x).detach().numpy()
    np.save(tmp_path / "x.npy", x.numpy())
    code = f"""
import sys, json, warnings
sys.modules['dblink'] = None  # importing dblink would fail: prove it is not needed
warnings.simplefilter('ignore')
import numpy as np, torch
files = {{'dblink.json': ''}}
m = torch.jit.load({str(path)!r}, _extra_files=files)
meta = json.loads(files['dblink.json'])
y = m(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r})))
np.save({str(tmp_path / 'y.npy')!r}, y.detach().numpy())
print(meta['pixel_size_nm'], meta['frames_per_step'], meta['format_version'])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["40.0", "10", "1"]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-6)


def test_model_file_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(DBlinkError, match="not a TorchScript"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(DBlinkError, match="no such model"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(DBlinkError, match="no model named"):
        load_model("no-such-model-name")
    net = build_model("compact", hidden=2, encoder=2, decoder=2, skip=2)
    save_model(net, tmp_path / "future.pt", {"pixel_size_nm": 40.0, "frames_per_step": 10,
                                            "format_version": 99})
    with pytest.raises(DBlinkError, match="newer dblink"):
        load_model(tmp_path / "future.pt")
    scripted = torch.jit.script(net)
    torch.jit.save(scripted, str(tmp_path / "plain.pt"))
    with pytest.raises(DBlinkError, match="without dblink metadata"):
        load_model(tmp_path / "plain.pt")


def test_compact_is_much_smaller_than_paper():
    assert count_parameters(build_model("compact")) * 5 < count_parameters(build_model("paper"))


def test_truncated_model_file(tmp_path, tiny_model_file):
    data = tiny_model_file.read_bytes()
    for keep in (len(data) // 2, len(data) - 100, 10):
        (tmp_path / "cut.pt").write_bytes(data[:keep])
        with pytest.raises(DBlinkError, match="not a TorchScript model file") as info:
            load_model(tmp_path / "cut.pt")
        assert "\n" not in str(info.value) and "cut.pt" in str(info.value)


def test_unreadable_metadata(tmp_path):
    net = build_model("compact", hidden=2, encoder=2, decoder=2, skip=2)
    torch.jit.save(torch.jit.script(net), str(tmp_path / "m.pt"), _extra_files={"dblink.json": "{not json"})
    with pytest.raises(DBlinkError, match="unreadable dblink metadata"):
        load_model(tmp_path / "m.pt")


def test_a_state_dict_is_not_a_model_file(tmp_path):
    net = build_model("compact", hidden=2, encoder=2, decoder=2, skip=2)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(DBlinkError, match="not a TorchScript model file"):
        load_model(tmp_path / "weights.pt")


class _Payload:
    """Any pickled object that is not plain tensors/containers: weights_only=True refuses it."""

    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_checkpoints_are_loaded_with_weights_only(tmp_path, capfd):
    from dblink.export import export_checkpoint
    torch.save({"config": "{}", "best": {}, "evil": _Payload()}, tmp_path / "checkpoint.pt")
    with pytest.raises(DBlinkError, match="not a dblink training checkpoint"):
        export_checkpoint(tmp_path / "checkpoint.pt", tmp_path / "m.pt")
    assert "unpickled code ran" not in capfd.readouterr().out
    assert not (tmp_path / "m.pt").exists()


def test_every_torch_load_in_the_package_uses_weights_only():
    import re
    from pathlib import Path
    import dblink
    calls = []
    for src in Path(dblink.__file__).parent.rglob("*.py"):
        text = src.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            end = text.index(")", m.end())
            calls.append((src.name, text[m.start():end + 1]))
    assert calls, "expected torch.load calls (export, train)"
    for name, call in calls:
        assert "weights_only=True" in call, f"{name}: {call}"


def test_import_original_weights(tmp_path):
    """A synthetic state dict with the original DBlink layout becomes an arch=paper model file
    whose outputs match a network built from those weights (per-frame normalized, as originally)."""
    from dblink.cli import main
    from dblink.engine import infer

    sd = original_state_dict()
    torch.save(sd, tmp_path / "LSTM_model")
    out = tmp_path / "orig.pt"
    assert main(["import-weights", str(tmp_path / "LSTM_model"), "-o", str(out),
                 "--pixel-size", "30", "--frames-per-step", "20"]) == 0
    m = load_model(out)
    assert m.meta["arch"] == "paper" and m.pixel_size == 30.0 and m.frames_per_step == 20
    assert m.normalize and m.meta["hparams"]["head"] == [128, 256, 64]
    ref = build_model("paper")
    ref.load_state_dict(sd)
    x = np.random.default_rng(0).poisson(0.05, (7, 12, 12)).astype(np.float32)
    y = infer(x, m.module, window=2, device="cpu", confidence=False, normalize=True,
              progress="none").video
    with torch.no_grad():
        r = ref(torch.from_numpy(x[1:6])[None])[0, 2]
    r = (r - r.min()) / (r.max() - r.min())
    np.testing.assert_allclose(y[3], r.numpy(), atol=1e-5)
    # a file that is not such a state dict: one clear error
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other")
    assert main(["import-weights", str(tmp_path / "other"), "-o", str(tmp_path / "x.pt"),
                 "--pixel-size", "30", "--frames-per-step", "20"]) == 2


def test_macs_per_pixel_counts_the_paper_network_exactly():
    from dblink.model import build_model, macs_per_pixel

    lstm = 2 * ((1 + 4) * 16 * 25 + (4 + 4) * 16 * 25)  # two directions, two layers, 5x5
    head = (8 * 128 + 128 * 256 + 256 * 64 + 64 * 1) * 25
    assert macs_per_pixel(build_model("paper")) == lstm + head == 1_266_400
    assert macs_per_pixel(build_model("compact", hidden=32)) < lstm + head / 30


@pytest.mark.parametrize("arch", ["paper", "compact"])
def test_cpu_fast_path_computes_the_same_function(arch):
    """Issue 18: the CPU fast paths (tanh from sigmoid, channels-last encoder and head) change
    fp32 rounding only; a scripted module switches them as a Python one does."""
    from dblink.model import set_cpu_fast
    torch.manual_seed(0)
    hp = {"head": [8, 8, 8]} if arch == "paper" else {"mean_input": True, "local_mean": 2}
    net = build_model(arch, **hp).eval()
    x = torch.rand(2, 9, 20, 18) * (torch.rand(2, 9, 20, 18) < 0.2) * 3
    for module in (net, torch.jit.script(net)):
        set_cpu_fast(module, True)
        fast = module(x, torch.tensor([2, 4]))
        set_cpu_fast(module, False)
        original = module(x, torch.tensor([2, 4]))
        assert not torch.equal(fast, original)  # the fast path did run
        torch.testing.assert_close(fast, original, rtol=0, atol=1e-6)


def test_cell_without_the_fast_path_is_the_original_convlstm():
    """With the fast path off a cell computes the original equations, bit for bit (the bench's
    reference loop relies on it)."""
    from dblink.model import ConvLSTMCell
    torch.manual_seed(1)
    cell = ConvLSTMCell(1, 4, 5)
    cell.cpu_fast = False
    x, h, c = torch.randn(2, 1, 12, 12), torch.randn(2, 4, 12, 12), torch.randn(2, 4, 12, 12)
    i, f, o, g = torch.chunk(cell.conv(torch.cat([x, h], dim=1)), 4, dim=1)
    c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h2 = torch.sigmoid(o) * torch.tanh(c2)
    got_h, got_c = cell(x, h, c)
    assert torch.equal(got_h, h2) and torch.equal(got_c, c2)


def test_reverse_pass_equals_the_forward_pass_over_flipped_time():
    from dblink.model import ConvLSTM
    torch.manual_seed(2)
    lstm = ConvLSTM(3, 4, 3, 2).eval()
    x = torch.randn(2, 6, 3, 10, 10)
    assert torch.equal(lstm(x, True), torch.flip(lstm(torch.flip(x, [1])), [1]))


def test_shipped_models_carry_the_current_network_code():
    """The bundled TorchScript files were scripted with the fast paths (tools/rescript_model.py);
    a file scripted before them would run the slower code frozen in it."""
    from dblink.export import list_models
    models = list_models()
    assert models
    for m in models:
        assert any(hasattr(sub, "cpu_fast") for sub in m.module.modules()), m.path.name


def _tool(args, root):
    """A development tool (tools/*.py) run as a script from the repository root."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root / "python")})


def test_rescript_tool_keeps_weights_and_metadata(tmp_path, tiny_model_file):
    out = tmp_path / "re.pt"
    root = Path(__file__).resolve().parents[1]
    r = _tool(["tools/rescript_model.py", str(tiny_model_file), str(out)], root)
    assert r.returncode == 0, r.stderr
    old, new = load_model(tiny_model_file), load_model(out)
    assert new.meta == old.meta
    for k, v in old.module.state_dict().items():
        assert torch.equal(v, new.module.state_dict()[k])


def test_fast_tanh_only_in_float32():
    """2·sigmoid(2x) − 1 matches tanh to fp32 rounding; 16-bit inputs (``--precision bf16``) keep
    tanh, where that form would lose the small values' precision."""
    from dblink.model import _tanh
    x = torch.linspace(-4, 4, 257)
    torch.testing.assert_close(_tanh(x, True), torch.tanh(x), rtol=0, atol=3e-7)
    xb = x.to(torch.bfloat16)
    assert torch.equal(_tanh(xb, True), torch.tanh(xb))


def test_widen_tool_keeps_the_function_and_soup_tool_averages(tmp_path, tiny_model_file):
    """tools/widen_model.py adds hidden channels without changing the output (a start for
    fine-tuning with more capacity); tools/soup_models.py averages weights and records its parts."""
    root = Path(__file__).resolve().parents[1]
    wide = tmp_path / "wide.pt"
    r = _tool(["tools/widen_model.py", str(tiny_model_file), str(wide), "7"], root)
    assert r.returncode == 0, r.stderr
    old, new = load_model(tiny_model_file), load_model(wide)
    assert new.meta["hparams"]["hidden"] == 7 and old.meta["hparams"]["hidden"] == 4
    torch.manual_seed(1)
    x = torch.rand(1, 7, 24, 24) * (torch.rand(1, 7, 24, 24) < 0.1)
    with torch.no_grad():
        torch.testing.assert_close(new.module(x), old.module(x), rtol=0, atol=1e-6)
    assert _tool(["tools/widen_model.py", str(tiny_model_file), str(tmp_path / "n.pt"), "3"],
                 root).returncode == 1  # narrower: one line, no file
    assert not (tmp_path / "n.pt").exists()

    soup = tmp_path / "soup.pt"
    r = _tool(["tools/soup_models.py", str(soup), str(tiny_model_file), str(tiny_model_file)], root)
    assert r.returncode == 0, r.stderr
    s = load_model(soup)
    assert [p["weight"] for p in s.meta["soup"]] == [0.5, 0.5]
    for k, v in old.module.state_dict().items():
        torch.testing.assert_close(s.module.state_dict()[k], v)
    r = _tool(["tools/soup_models.py", str(tmp_path / "bad.pt"), str(tiny_model_file), str(wide)], root)
    assert r.returncode == 1 and "another architecture" in r.stderr and "Traceback" not in r.stderr
