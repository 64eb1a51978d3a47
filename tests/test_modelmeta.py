"""Model files (issue 13, item 4): one schema for dblink.json, a bounded read of the zip, and a probe
forward at load time. Every broken model file is one DBlinkError line naming the file, and a file
that ``save_model`` writes is one that ``load_model`` reads."""
import json
import time
import zipfile
from typing import List, Optional

import pytest
import torch
from torch import Tensor, nn

from dblink import modelmeta
from dblink.cli import main
from dblink.errors import DBlinkError
from dblink.export import export_checkpoint, import_original, load_model, save_model
from dblink.model import build_model, model_hparams

HP = dict(hidden=2, encoder=2, decoder=2, skip=2)


def good_meta():
    return {"name": "tiny", "arch": "compact", "hparams": model_hparams("compact", **HP),
            "pixel_size_nm": 40.0, "frames_per_step": 10, "window": 3, "output": "probability",
            "density_range_per_um2_per_frame": [0.1, 1.0], "format_version": 1,
            "dblink_version": "0.1.0", "parameters": 100, "sample": "filaments",
            "validation": {"f1": 0.9, "step": 10}, "training": {"steps_done": 1}}


@pytest.fixture(scope="module")
def scripted():
    torch.manual_seed(0)
    return torch.jit.script(build_model("compact", **HP).eval())


def raw_model(path, module, meta_text):
    """A TorchScript file with any dblink.json text (no validation on the way in)."""
    torch.jit.save(module, str(path), _extra_files={"dblink.json": meta_text})
    return path


def one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


def _set(key, value):
    def f(m):
        m[key] = value
        return m
    return f


def _set_hp(key, value):
    def f(m):
        m["hparams"][key] = value
        return m
    return f


def _drop(key):
    def f(m):
        del m[key]
        return m
    return f


# (mutation, field named in the message)
BAD_META = [
    (lambda m: [m], "must be an object"),
    (lambda m: "a string", "must be an object"),
    (lambda m: 42, "must be an object"),
    (lambda m: None, "must be an object"),
    (_set("pixel_size_nm", "40"), "'pixel_size_nm' must be a number"),
    (_set("pixel_size_nm", 0), "'pixel_size_nm' must be > 0"),
    (_set("pixel_size_nm", -40.0), "'pixel_size_nm' must be > 0"),
    (_set("pixel_size_nm", True), "'pixel_size_nm' must be a number"),
    (_set("pixel_size_nm", [40]), "'pixel_size_nm' must be a number"),
    (_set("pixel_size_nm", 1e300), "'pixel_size_nm' must be <="),
    (_set("frames_per_step", "10"), "'frames_per_step' must be a number"),
    (_set("frames_per_step", 0), "'frames_per_step' must be a whole number from 1"),
    (_set("frames_per_step", 2.5), "'frames_per_step' must be a whole number"),
    (_set("frames_per_step", 10**30), "'frames_per_step' must be a whole number from 1"),
    (_set("window", -4), "'window' must be a whole number from 0"),
    (_set("window", "25"), "'window' must be a number"),
    (_set("window", 1.5), "'window' must be a whole number"),
    (_set("window", None), "'window' must be a number"),
    (_set("window", 10**9), "'window' must be a whole number from 0"),
    (_set("format_version", "1"), "'format_version' must be a number"),
    (_set("format_version", 0), "'format_version' must be a whole number from 1"),
    (_set("format_version", 1.5), "'format_version' must be a whole number"),
    (_set("hparams", [1, 2]), "'hparams' must be an object"),
    (_set("hparams", "hidden=2"), "'hparams' must be an object"),
    (_set_hp("kernel", "3"), "'hparams.kernel' must be a number"),
    (_set_hp("kernel", 0), "'hparams.kernel' must be a whole number from 1"),
    (_set_hp("hidden", -2), "'hparams.hidden' must be a whole number from 1"),
    (_set_hp("hidden", 10**6), "'hparams.hidden' must be a whole number from 1"),
    (_set_hp("log_input", "yes"), "'hparams.log_input' must be true or false"),
    (_set_hp("out_activation", "relu"), "'hparams.out_activation' must be one of"),
    (_set_hp("dropout", 0.5), "unknown key 'dropout'"),
    (_set("arch", "resnet"), "'arch' must be one of"),
    (_set("arch", 5), "'arch' must be one of"),
    (_set("density_range_per_um2_per_frame", "0.1-1"), "'density_range_per_um2_per_frame' must be [low, high]"),
    (_set("density_range_per_um2_per_frame", [1]), "'density_range_per_um2_per_frame' must be [low, high]"),
    (_set("density_range_per_um2_per_frame", [0.1, "1"]), "'density_range_per_um2_per_frame[1]' must be a number"),
    (_set("density_range_per_um2_per_frame", [2, 1]), "low <= high"),
    (_set("density_range_per_um2_per_frame", [-1, 1]), "'density_range_per_um2_per_frame[0]' must be >= 0"),
    (_set("output", "logits"), "'output' must be one of"),
    (_set("name", 5), "'name' must be text"),
    (_set("name", ""), "'name' must be 1 to 200"),
    (_set("sample", ["filaments"]), "'sample' must be text"),
    (_set("validation", [0.9]), "'validation' must be an object"),
    (_set("validation", {"f1": "high"}), "'validation.f1' must be a number"),
    (_set("training", "yes"), "'training' must be an object"),
    (_set("parameters", -1), "'parameters' must be a whole number from 0"),
    (_drop("pixel_size_nm"), "lacks 'pixel_size_nm'"),
    (_drop("frames_per_step"), "lacks 'frames_per_step'"),
]


@pytest.mark.parametrize("mutate,needle", BAD_META, ids=[n for _, n in BAD_META])
def test_bad_metadata_is_one_line_at_load(tmp_path, scripted, mutate, needle):
    path = raw_model(tmp_path / "bad.pt", scripted, json.dumps(mutate(good_meta())))
    with pytest.raises(DBlinkError) as info:
        load_model(path)
    one_line(info, str(path), needle)


@pytest.mark.parametrize("mutate,needle", [b for b in BAD_META if b[1] != "must be an object"])
def test_the_same_schema_when_saving(tmp_path, mutate, needle):
    net = build_model("compact", **HP)
    with pytest.raises(DBlinkError) as info:
        save_model(net, tmp_path / "m.pt", mutate(good_meta()))
    one_line(info, needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text,needle", [
    ('{"pixel_size_nm": NaN, "frames_per_step": 10}', "'pixel_size_nm' must be a finite number"),
    ('{"pixel_size_nm": 1e400, "frames_per_step": 10}', "'pixel_size_nm' must be a finite number"),
    ('{"pixel_size_nm": 40, "frames_per_step": Infinity}', "'frames_per_step' must be a finite"),
    ("[" * 100_000 + "]" * 100_000, "unreadable dblink metadata"),
    ("{not json", "unreadable dblink metadata"),
    ('"just a string"', "must be an object"),
    ("", "without dblink metadata"),
])
def test_odd_json(tmp_path, scripted, text, needle):
    path = raw_model(tmp_path / "odd.pt", scripted, text)
    with pytest.raises(DBlinkError) as info:
        load_model(path)
    one_line(info, needle)


def test_the_bundled_and_fixture_models_pass_the_schema(tiny_model_file):
    m = load_model(tiny_model_file)
    assert m.window == 3 and m.frames_per_step == 10 and m.pixel_size == 40.0
    for name in ("filaments", "mitochondria"):
        try:
            load_model(name)
        except DBlinkError as exc:
            if "no model named" not in str(exc):
                raise


def test_whole_numbers_written_as_floats_are_accepted(tmp_path, scripted):
    meta = dict(good_meta(), frames_per_step=10.0, window=3.0)
    m = load_model(raw_model(tmp_path / "f.pt", scripted, json.dumps(meta)))
    assert m.frames_per_step == 10 and isinstance(m.meta["frames_per_step"], int)


# ------------------------------------------------------------------ bounded read of the zip

def _rezip(src, dst, replace: dict, compress=zipfile.ZIP_DEFLATED):
    """Copy a model file's zip, replacing entries whose name ends with a key of ``replace``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info.filename, data, compress_type=compress)
    return dst


def test_a_metadata_zip_bomb_is_not_inflated(tmp_path, tiny_model_file, monkeypatch):
    big = b'{"pad": "' + b" " * (8 * 2**20) + b'"}'
    path = _rezip(tiny_model_file, tmp_path / "bomb.pt", {"extra/dblink.json": big})
    assert path.stat().st_size < 200_000  # a small file that would inflate to 8 MiB
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append(a) or real_open(self, *a, **k))
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load was reached"))
    with pytest.raises(DBlinkError) as info:
        load_model(path)
    one_line(info, str(path), "dblink.json would inflate to", "not a dblink model file")
    assert opened == []


def test_a_model_that_would_inflate_too_much_is_refused(tmp_path, tiny_model_file, monkeypatch):
    monkeypatch.setattr(modelmeta, "MAX_MODEL_BYTES", 4096)
    with pytest.raises(DBlinkError) as info:
        load_model(tiny_model_file)
    one_line(info, "would inflate to", "not a dblink model file")


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04" + b"\x00" * 100, b"PK\x05\x06" + b"\x00" * 18,
                                  b"\x80\x02}q\x00.", b"#!/bin/sh\necho hi\n"])
def test_not_a_zip(tmp_path, data):
    (tmp_path / "x.pt").write_bytes(data)
    with pytest.raises(DBlinkError) as info:
        load_model(tmp_path / "x.pt")
    one_line(info, "not a TorchScript model file")


# ------------------------------------------------------------------ not a dblink network

class OneArg(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class SameShape(nn.Module):
    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        return x


class Transposed(nn.Module):
    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        if positions is not None:
            x = x.index_select(1, positions)
        return x[:, :, :, :4]


class NaNs(nn.Module):
    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        if positions is not None:
            x = x.index_select(1, positions)
        return x * float("nan")


class Pair(nn.Module):
    def forward(self, x: Tensor, positions: Optional[Tensor] = None,
                logits: bool = False) -> List[Tensor]:
        return [x, x]


class Raises(nn.Module):
    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        raise RuntimeError("this is not a network")


class Strings(nn.Module):
    def forward(self, s: str) -> str:
        return s


class IntOut(nn.Module):
    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        return torch.zeros(1, 1, 8, 8, dtype=torch.long)


@pytest.mark.parametrize("cls", [OneArg, SameShape, Transposed, NaNs, Pair, Raises, Strings, IntOut])
def test_a_torchscript_file_that_is_not_a_dblink_network(tmp_path, cls):
    path = raw_model(tmp_path / "other.pt", torch.jit.script(cls()), json.dumps(good_meta()))
    t0 = time.perf_counter()
    with pytest.raises(DBlinkError) as info:
        load_model(path)
    one_line(info, str(path), "not a dblink network")
    assert len(str(info.value)) < 400
    assert time.perf_counter() - t0 < 30


@pytest.mark.parametrize("cls", [SameShape, Raises])
def test_not_a_network_through_the_cli(tmp_path, capsys, cls):
    path = raw_model(tmp_path / "other.pt", torch.jit.script(cls()), json.dumps(good_meta()))
    assert main(["export", "--bioimageio", str(tmp_path / "p.zip"), "--model", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dblink: error:") and "not a dblink network" in err[0]
    assert not (tmp_path / "p.zip").exists()


def test_save_model_refuses_a_network_that_is_not_one(tmp_path):
    with pytest.raises(DBlinkError) as info:
        save_model(SameShape(), tmp_path / "m.pt", good_meta())
    one_line(info, "not a dblink network")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ export of checkpoints

def checkpoint(path, **changes):
    torch.manual_seed(0)
    net = build_model("compact", **HP)
    cfg = {"name": "t", "arch": "compact", "hparams": HP, "window": 3,
           "sim": {"sample": "filaments", "pixel_size": 40.0, "frames_per_step": 10},
           "ranges": {"density": [0.1, 1.0]}}
    cfg.update(changes.pop("cfg", {}))
    ck = {"config": json.dumps(cfg), "best": net.state_dict(), "step": 5, "elapsed_s": 1.0,
          "best_metrics": {"f1": 0.5}}
    ck.update(changes)
    torch.save(ck, path)
    return path


def test_a_good_checkpoint_exports(tmp_path):
    out = export_checkpoint(checkpoint(tmp_path / "c.pt"), tmp_path / "m.pt")
    assert load_model(out).meta["arch"] == "compact"


@pytest.mark.parametrize("changes,needle", [
    (dict(cfg={"arch": "transformer"}), "unknown architecture 'transformer'"),
    (dict(cfg={"arch": None}), "unknown architecture None"),
    (dict(cfg={"hparams": {"hidden": "2"}}), "'config.hparams.hidden' must be a number"),
    (dict(cfg={"hparams": {"heads": 8}}), "unknown key 'heads'"),
    (dict(cfg={"hparams": [2]}), "'config.hparams' must be an object"),
    (dict(cfg={"window": -4}), "'window' must be a whole number from 0"),
    (dict(cfg={"sim": {"pixel_size": 0, "frames_per_step": 10}}), "'pixel_size_nm' must be > 0"),
    (dict(cfg={"sim": {"pixel_size": 40, "frames_per_step": "10"}}), "'frames_per_step' must be a number"),
    (dict(cfg={"sim": None}), "no 'sim'"),
    (dict(best={}), "has no best weights"),
    (dict(best=None), "has no best weights"),
    (dict(best=[1, 2]), "has no best weights"),
    (dict(best={"encoder.0.weight": torch.zeros(3)}), "do not fit the compact architecture"),
    (dict(config="{not json"), "'config' is not JSON"),
    (dict(config="[1, 2]"), "'config' is not an object"),
    (dict(step="five"), "'step' is not a number"),
    (dict(best_metrics=[1]), "'best_metrics' is not a dict"),
    (dict(best_metrics={"f1": "good"}), "'validation.f1' must be a number"),
])
def test_bad_checkpoints_are_one_line(tmp_path, capsys, changes, needle):
    ck = checkpoint(tmp_path / "c.pt", **changes)
    assert main(["export", str(ck), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dblink: error:") and needle in err[0], err
    assert not (tmp_path / "m.pt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("obj", [[1, 2], "text", 5, None, {"config": "{}"}])
def test_checkpoint_files_that_hold_something_else(tmp_path, capsys, obj):
    torch.save(obj, tmp_path / "c.pt")
    assert main(["export", str(tmp_path / "c.pt"), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a dblink training checkpoint" in err[0], err


@pytest.mark.parametrize("out,needle", [("missing/m.pt", "does not exist"), ("m.txt", "must be a .pt file"),
                                        ("adir.pt", "is a folder")])
def test_export_output_checked_first(tmp_path, capsys, out, needle):
    (tmp_path / "adir.pt").mkdir()
    ck = checkpoint(tmp_path / "c.pt")
    assert main(["export", str(ck), "-o", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


# ------------------------------------------------------------------ import-weights

def _iw(tmp_path, sd_obj, *extra, out="m.pt"):
    torch.save(sd_obj, tmp_path / "LSTM_model")
    return main(["import-weights", str(tmp_path / "LSTM_model"), "-o", str(tmp_path / out),
                 "--pixel-size", "100", "--frames-per-step", "10", *extra])


def _orig():
    from conftest import original_state_dict
    return original_state_dict()


@pytest.mark.parametrize("sd_fn,needle", [
    (lambda: [1, 2, 3], "it holds a list"),
    (lambda: "weights", "it holds a str"),
    (lambda: {"forward_net.cell_list.x.conv.weight": torch.zeros(16, 5, 5, 5)}, "no forward_net.cell_list"),
    (lambda: {"forward_net.cell_list.1.conv.weight": torch.zeros(16, 5, 5, 5),
              "conv_net.0.weight": torch.zeros(8, 8, 5, 5)}, "missing"),
    (lambda: {1: torch.zeros(3)}, "is not a named tensor"),
    (lambda: {"forward_net.cell_list.0.conv.weight": [1, 2]}, "is not a named tensor"),
    (lambda: {"forward_net.cell_list.0.conv.weight": torch.zeros(16),
              "conv_net.0.weight": torch.zeros(8)}, "missing"),
    (lambda: {"forward_net.cell_list.0.conv.weight": torch.zeros(2, 5, 5, 5),
              "conv_net.0.weight": torch.zeros(8, 8, 5, 5)}, "hparams.hidden"),
    (lambda: dict(_orig(), **{"conv_net.0.weight": torch.zeros(128, 8, 4, 4)}), "do not fit"),
    (lambda: {k: v for k, v in _orig().items() if "reverse" not in k}, "do not fit"),
])
def test_import_weights_bad_state_dicts(tmp_path, capsys, sd_fn, needle):
    assert _iw(tmp_path, sd_fn()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dblink: error:") and needle in err[0], err
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("extra,needle", [
    (["--pixel-size", "0"], "--pixel-size must be > 0"),
    (["--pixel-size", "-100"], "--pixel-size must be > 0"),
    (["--pixel-size", "nan"], "--pixel-size must be a finite number"),
    (["--pixel-size", "inf"], "--pixel-size must be a finite number"),
    (["--frames-per-step", "0"], "--frames-per-step must be a whole number from 1"),
    (["--frames-per-step", "-3"], "--frames-per-step must be a whole number from 1"),
    (["--window", "-4"], "--window must be a whole number from 0"),
])
def test_import_weights_bad_numbers(tmp_path, capsys, extra, needle):
    assert _iw(tmp_path, _orig(), *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("out,needle", [("missing/m.pt", "does not exist"), ("adir", "must be a .pt"),
                                        ("adir.pt", "is a folder")])
def test_import_weights_output_checked_first(tmp_path, capsys, out, needle):
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir.pt").mkdir()
    assert _iw(tmp_path, _orig(), out=out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_import_original_checks_its_numbers_as_a_function():
    with pytest.raises(DBlinkError, match="--frames-per-step must be a whole number"):
        import_original("nowhere", "m.pt", 100.0, 2.5)


def test_a_huge_zip_directory_is_refused_before_parsing(tmp_path, tiny_model_file, monkeypatch):
    monkeypatch.setattr(modelmeta, "MAX_ZIP_DIRECTORY_BYTES", 100)
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: pytest.fail("the directory was parsed"))
    with pytest.raises(DBlinkError) as info:
        load_model(tiny_model_file)
    one_line(info, "the zip directory alone is")


def test_zip64_directory_size_is_read(tmp_path):
    path = tmp_path / "z64.zip"
    with zipfile.ZipFile(path, "w", allowZip64=True) as z:
        for i in range(70_000):  # more entries than a plain end record can count
            z.writestr(f"e{i}", b"")
    size = modelmeta._central_directory_size(str(path))
    assert size is not None and size > 70_000 * 46


class OnlySquare(nn.Module):
    """Right on the 8 x 8 probe, wrong elsewhere (e.g. a hard-coded size)."""

    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        if positions is not None:
            x = x.index_select(1, positions)
        return x[:, :, :8, :8]


class NeedsPositions(nn.Module):
    def forward(self, x: Tensor, positions: Tensor, logits: bool = False) -> Tensor:
        return x.index_select(1, positions)


class WrongWithoutPositions(nn.Module):
    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        if positions is None:
            return x[:, :1]
        return x.index_select(1, positions)


@pytest.mark.parametrize("cls,needle", [(OnlySquare, "1 x 5 x 12 x 16"), (NeedsPositions, "forward(x) on"),
                                        (WrongWithoutPositions, "forward(x) on")])
def test_networks_wrong_on_other_sizes_or_without_positions(tmp_path, cls, needle):
    path = raw_model(tmp_path / "other.pt", torch.jit.script(cls()), json.dumps(good_meta()))
    with pytest.raises(DBlinkError) as info:
        load_model(path)
    one_line(info, "not a dblink network", needle)


def test_both_architectures_pass_the_probe():
    for arch in ("paper", "compact"):
        modelmeta.probe(torch.jit.script(build_model(arch).eval()), arch)


HEADER_CHECK = r"""
import json, sys
from dblink.modelmeta import read_header
from dblink.cli import main
h = read_header(sys.argv[1])
rc = main(["reconstruct", sys.argv[2], "-o", sys.argv[3], "--model", sys.argv[1]])
print(json.dumps({"meta": h.meta, "module": h.module is None, "rc": rc, "torch": "torch" in sys.modules}))
"""


def test_the_header_is_read_without_pytorch_and_a_bad_table_is_refused_before_the_import(
        tmp_path, tiny_model_file):
    """read_header gives the metadata load_model gives, from the zip alone; a table whose frame
    numbers make too many steps is refused (exit 2) before PyTorch is imported."""
    import subprocess
    import sys

    table = tmp_path / "absurd.csv"
    table.write_text("frame,x,y\n1,100,200\n1000000000,101,200\n")
    out = subprocess.run([sys.executable, "-c", HEADER_CHECK, str(tiny_model_file), str(table),
                          str(tmp_path / "o.tif")], capture_output=True, text=True, timeout=120)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["meta"] == load_model(tiny_model_file).meta and r["module"]
    assert r["rc"] == 2 and "more than dblink handles" in out.stderr
    assert not r["torch"], "PyTorch was imported before the table's geometry was checked"
    assert not (tmp_path / "o.tif").exists()


def test_a_header_without_metadata_or_of_a_newer_format_is_refused(tmp_path):
    bare = tmp_path / "bare.pt"
    with zipfile.ZipFile(bare, "w") as zf:
        zf.writestr("bare/data.pkl", b"x")
    with pytest.raises(DBlinkError, match="without dblink metadata"):
        modelmeta.read_header(bare)
    newer = tmp_path / "newer.pt"
    with zipfile.ZipFile(newer, "w") as zf:
        zf.writestr("newer/extra/dblink.json", json.dumps(dict(good_meta(), format_version=99)))
    with pytest.raises(DBlinkError, match="made by a newer dblink"):
        modelmeta.read_header(newer)
    with pytest.raises(DBlinkError, match="not a TorchScript model file|not a zip"):
        (tmp_path / "text.pt").write_text("hello")
        modelmeta.read_header(tmp_path / "text.pt")
