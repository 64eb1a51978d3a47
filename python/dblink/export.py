"""The model file: TorchScript plus metadata, and finding/loading models by name or path.

A model file is ``torch.jit.script(net)`` saved with ``_extra_files={"dblink.json": ...}``; it loads
with ``torch.jit.load`` alone (no dblink import), so Java (DJL, deepImageJ) and C++ can run it.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from . import __version__
from . import modelmeta
from .errors import DBlinkError, first_line
from .files import path_errors
from .model import build_model, count_parameters
from .modelmeta import FORMAT_VERSION, META_FILE  # noqa: F401 - re-exported
from .modelmeta import LoadedModel, models_dirs, resolve_model  # noqa: F401 - re-exported


def _quiet_jit():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*TorchScript.*")
    return ctx


def save_model(net: torch.nn.Module, path: str | Path, meta: dict) -> Path:
    """Script ``net`` and save it with ``meta`` as ``dblink.json`` (written atomically)."""
    from .files import atomic_output

    meta = dict(meta)
    meta.setdefault("format_version", FORMAT_VERSION)
    meta.setdefault("dblink_version", __version__)
    meta.setdefault("parameters", count_parameters(net))
    text = modelmeta.dumps(meta, str(path))  # the one schema: a file that is written also loads
    ctx = _quiet_jit()
    try:
        scripted = torch.jit.script(net.cpu().eval())
        modelmeta.probe(scripted, str(path))  # a file that is written is one that loads
        buf = io.BytesIO()  # saved from memory: the zip's root is "archive", not the temp name
        torch.jit.save(scripted, buf, _extra_files={META_FILE: text})
        with atomic_output(path) as tmp:
            Path(tmp).write_bytes(buf.getvalue())
    finally:
        ctx.__exit__(None, None, None)
    return Path(path)


@path_errors
def export_checkpoint(checkpoint: str | Path, out: str | Path, name: str | None = None,
                      extra: dict | None = None) -> Path:
    """Export the best weights of a training checkpoint as a TorchScript model file."""
    from .files import check_output_path

    ckpt_path = Path(checkpoint)
    if not ckpt_path.is_file():
        raise DBlinkError(f"{ckpt_path}: no such checkpoint")
    check_output_path(out, overwrite=True, suffixes=(".pt",), what="model file")
    ckpt, cfg = _read_checkpoint(ckpt_path)
    net = _best_network(ckpt_path, ckpt, cfg)
    meta = _checkpoint_meta(ckpt_path, ckpt, cfg, net, name or cfg.get("name", Path(out).stem))
    modelmeta.validate(meta, f"{ckpt_path}: the checkpoint's config gives")
    meta.update(extra or {})
    return save_model(net, out, meta)


def _read_checkpoint(ckpt_path: Path) -> tuple[dict, dict]:
    """A training checkpoint (weights only) and its config, checked: a known architecture and
    hyper-parameters, a ``sim`` with the pixel size and frames per step."""
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is a user error here
        first = first_line(exc, 120)
        raise DBlinkError(f"{ckpt_path}: not a dblink training checkpoint ({first})") from None
    where = f"{ckpt_path}: not a dblink training checkpoint"
    if not isinstance(ckpt, dict):
        raise DBlinkError(f"{where} (it holds {type(ckpt).__name__}, not a dict)")
    for key in ("config", "best", "step"):
        if key not in ckpt:
            raise DBlinkError(f"{where} (no {key!r} entry)")
    try:
        cfg = json.loads(ckpt["config"]) if isinstance(ckpt["config"], (str, bytes)) else ckpt["config"]
    except (ValueError, RecursionError):
        raise DBlinkError(f"{where} (its 'config' is not JSON)") from None
    if not isinstance(cfg, dict):
        raise DBlinkError(f"{where} (its 'config' is not an object)")
    arch = cfg.get("arch")
    if arch not in modelmeta.ARCHES:
        shown = repr(arch)[:40]
        raise DBlinkError(f"{ckpt_path}: unknown architecture {shown} in the checkpoint's config "
                          f"(this dblink knows {', '.join(modelmeta.ARCHES)})")
    try:
        modelmeta.check_hparams(arch, cfg.get("hparams") or {}, "config.hparams")
    except modelmeta._Bad as exc:
        raise DBlinkError(f"{ckpt_path}: {exc}") from None
    sim = cfg.get("sim")
    if not isinstance(sim, dict) or "pixel_size" not in sim or "frames_per_step" not in sim:
        raise DBlinkError(f"{where} (its config has no 'sim' with 'pixel_size' and 'frames_per_step')")
    return ckpt, cfg


def _best_network(ckpt_path: Path, ckpt: dict, cfg: dict) -> torch.nn.Module:
    """The config's network with the checkpoint's best weights."""
    best, arch = ckpt["best"], cfg["arch"]
    if not isinstance(best, dict) or not best or not all(isinstance(v, torch.Tensor) for v in best.values()):
        raise DBlinkError(f"{ckpt_path}: the checkpoint has no best weights (its 'best' entry is "
                          f"{'empty' if best == {} else type(best).__name__}); train longer, or "
                          f"export a checkpoint written after a validation")
    net = build_model(arch, **(cfg.get("hparams") or {}))
    try:
        net.load_state_dict(best)
    except RuntimeError as exc:
        raise DBlinkError(f"{ckpt_path}: the best weights do not fit the {arch} architecture of its "
                          f"config ({first_line(exc, 160)})") from None
    return net


def _checkpoint_meta(ckpt_path: Path, ckpt: dict, cfg: dict, net: torch.nn.Module, name: str) -> dict:
    """The model file's metadata from a training checkpoint: architecture, grid, training run
    (config, steps, wall time) and its best validation scores."""
    from .model import model_hparams

    where = f"{ckpt_path}: not a dblink training checkpoint"

    def num(key: str, default: float = 0.0) -> float:
        v = ckpt.get(key, default)
        try:
            return float(v)
        except (TypeError, ValueError):
            raise DBlinkError(f"{where} (its {key!r} is not a number)") from None

    metrics = ckpt.get("best_metrics") or {}
    if not isinstance(metrics, dict):
        raise DBlinkError(f"{where} (its 'best_metrics' is not a dict)")
    sim, arch = cfg["sim"], cfg["arch"]
    rng = cfg.get("ranges", {}).get("density") if isinstance(cfg.get("ranges"), dict) else None
    return {
        "name": name,
        "arch": arch,
        "hparams": model_hparams(arch, **(cfg.get("hparams") or {})),
        "sample": sim.get("sample", "filaments"),
        "pixel_size_nm": sim["pixel_size"],
        "frames_per_step": sim["frames_per_step"],
        "window": cfg.get("window", 25),
        "output": "probability" if net.sigmoid_out else "unbounded",
        "density_range_per_um2_per_frame": list(rng) if isinstance(rng, (list, tuple)) else rng,
        "training": {"config": cfg, "steps_done": int(num("step")),
                     "wall_time_s": round(num("elapsed_s"), 1)},
        "validation": metrics,
    }


@path_errors
def load_model(name_or_path: str | Path) -> LoadedModel:
    """Load a TorchScript model file (by path or bundled name) and check its metadata."""
    path = resolve_model(str(name_or_path))
    modelmeta.check_zip(str(path))  # before torch inflates anything
    files = {META_FILE: ""}
    ctx = _quiet_jit()
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    except Exception as exc:  # noqa: BLE001
        first = first_line(exc, 160)
        raise DBlinkError(f"{path}: not a TorchScript model file ({first})") from None
    finally:
        ctx.__exit__(None, None, None)
    if not files[META_FILE]:
        raise DBlinkError(f"{path}: TorchScript file without dblink metadata ({META_FILE})")
    meta = modelmeta.checked_meta(files[META_FILE], path)
    module.eval()
    modelmeta.probe(module, str(path))
    return LoadedModel(module=module, meta=meta, path=path)


def list_models() -> list[LoadedModel]:
    """All bundled models."""
    out = []
    seen = set()
    for d in models_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.pt")):
                if p.name not in seen:
                    seen.add(p.name)
                    out.append(load_model(p))
    return out


def _check_import_args(pixel_size_nm: float, frames_per_step: int, window: int,
                       name: str | None) -> dict:
    """The geometry of an imported model, checked as model metadata is (named by its flags)."""
    opts = {"pixel_size_nm": pixel_size_nm, "frames_per_step": frames_per_step, "window": window}
    flags = {"pixel_size_nm": "--pixel-size", "frames_per_step": "--frames-per-step", "window": "--window"}
    try:
        checked = modelmeta._check(dict(opts))
    except modelmeta._Bad as exc:  # name the command-line flag, not the metadata field
        msg = str(exc)
        for key, flag in flags.items():
            msg = msg.replace(f"'{key}'", flag)
        raise DBlinkError(msg) from None
    if name is not None:
        try:
            modelmeta._text(name, "--name")
        except modelmeta._Bad as exc:
            raise DBlinkError(str(exc).replace("'--name'", "--name")) from None
    return {k: checked[k] for k in opts}


def _read_state_dict(src: Path) -> dict:
    """A plain state dict of named tensors (``module.`` prefixes of DataParallel removed)."""
    if not src.is_file():
        raise DBlinkError(f"{src}: no such file")
    try:
        sd = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise DBlinkError(f"{src}: not a plain PyTorch state dict ({first_line(exc, 120)}); "
                          f"re-save it with torch.save(model.state_dict(), path)") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise DBlinkError(f"{src}: not an original DBlink state dict (it holds a "
                          f"{type(sd).__name__}, not a dict of weights)")
    bad = next((k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)),
               None)
    if bad is not None:
        raise DBlinkError(f"{src}: not an original DBlink state dict (entry {str(bad)[:60]!r} is "
                          f"not a named tensor)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def _original_hparams(sd: dict, src: Path) -> dict:
    """The paper architecture's hyper-parameters, read from the original weights' shapes."""
    def index(k: str, pos: int) -> int | None:
        part = k.split(".")[pos] if len(k.split(".")) > pos else ""
        return int(part) if part.isdigit() and len(part) < 4 else None

    cells = sorted(i for k in sd if k.startswith("forward_net.cell_list.") and k.endswith(".conv.weight")
                   for i in [index(k, 2)] if i is not None)
    head = sorted(i for k in sd if k.startswith("conv_net.") and k.endswith(".weight")
                  for i in [index(k, 1)] if i is not None)
    if not cells or not head:
        raise DBlinkError(f"{src}: not an original DBlink state dict (no forward_net.cell_list.* "
                          f"or conv_net.* weights)")
    try:
        w0 = sd["forward_net.cell_list.0.conv.weight"]
        ws = [sd[f"conv_net.{i}.weight"] for i in head]
        if w0.dim() != 4 or any(w.dim() != 4 for w in ws):
            raise KeyError("weights of 4 dimensions")
        hidden, kernel = int(w0.shape[0]) // 4, int(w0.shape[-1])
        head_ch = [int(w.shape[0]) for w in ws[:-1]]
        head_k = int(ws[0].shape[-1])
    except KeyError as exc:
        raise DBlinkError(f"{src}: not an original DBlink state dict (missing {exc})") from None
    hp = dict(hidden=hidden, layers=len(cells), kernel=kernel, head=head_ch, head_kernel=head_k,
              log_input=False, out_activation="none")
    try:
        modelmeta.check_hparams("paper", hp, "the weights' shapes give hparams")
    except modelmeta._Bad as exc:
        raise DBlinkError(f"{src}: not an original DBlink state dict ({exc})") from None
    return hp


@path_errors
def import_original(state_path: str | Path, out: str | Path, pixel_size_nm: float,
                    frames_per_step: int, window: int = 25, name: str | None = None) -> Path:
    """Convert a state dict saved by the original DBlink code into an ``arch=paper`` model file.

    The original keys are ``forward_net.cell_list.{i}.conv.weight/bias`` (shape [4·hidden,
    in + hidden, k, k]), the same under ``reverse_net.``, and ``conv_net.{0,2,4,6}.weight/bias``;
    the hyper-parameters are read from the shapes. The original network fed raw localization counts
    per step and normalized each output frame to [0, 1]: the model file says so (``output:
    unbounded``), and dblink normalizes each frame the same way.
    """
    src = Path(state_path)
    geometry = _check_import_args(pixel_size_nm, frames_per_step, window, name)
    if not src.is_file():
        raise DBlinkError(f"{src}: no such file")
    from .files import check_output_path
    check_output_path(out, overwrite=True, suffixes=(".pt",), what="model file")
    sd = _read_state_dict(src)
    hp = _original_hparams(sd, src)
    try:
        net = build_model("paper", **hp)
        net.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise DBlinkError(f"{src}: weights do not fit the paper architecture "
                          f"({first_line(exc, 160)})") from None
    meta = {"name": name or Path(out).stem, "arch": "paper", "hparams": hp, "output": "unbounded",
            "pixel_size_nm": float(geometry["pixel_size_nm"]),
            "frames_per_step": int(geometry["frames_per_step"]), "window": int(geometry["window"]),
            "imported_from": {"file": src.name, "note": "original DBlink weights (Saguy et al.)"}}
    return save_model(net, out, meta)
