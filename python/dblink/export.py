"""The model file: TorchScript plus metadata, and finding/loading models by name or path.

A model file is ``torch.jit.script(net)`` saved with ``_extra_files={"dblink.json": ...}``; it loads
with ``torch.jit.load`` alone (no dblink import), so Java (DJL, deepImageJ) and C++ can run it.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from . import __version__
from .errors import DBlinkError
from .model import build_model, count_parameters

#: metadata format version written into every model file; readers refuse newer majors
FORMAT_VERSION = 1
META_FILE = "dblink.json"


def models_dirs() -> list[Path]:
    """Where bundled models are looked up: $DBLINK_MODELS (os.pathsep-separated), then the
    repository's ``models/`` folder."""
    dirs = [Path(p) for p in os.environ.get("DBLINK_MODELS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "models")
    return dirs


@dataclass
class LoadedModel:
    """A TorchScript network with its metadata."""

    module: torch.jit.ScriptModule
    meta: dict
    path: Path

    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.stem)

    @property
    def window(self) -> int:
        return int(self.meta.get("window", 25))

    @property
    def pixel_size(self) -> float:
        return float(self.meta["pixel_size_nm"])

    @property
    def frames_per_step(self) -> int:
        return int(self.meta["frames_per_step"])

    @property
    def normalize(self) -> bool:
        """Whether outputs are unbounded and need per-frame normalization to [0, 1]."""
        return self.meta.get("output", "probability") != "probability"


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
    ctx = _quiet_jit()
    try:
        scripted = torch.jit.script(net.cpu().eval())
        with atomic_output(path) as tmp:
            torch.jit.save(scripted, tmp, _extra_files={META_FILE: json.dumps(meta, indent=1)})
    finally:
        ctx.__exit__(None, None, None)
    return Path(path)


def export_checkpoint(checkpoint: str | Path, out: str | Path, name: str | None = None,
                      extra: dict | None = None) -> Path:
    """Export the best weights of a training checkpoint as a TorchScript model file."""
    ckpt_path = Path(checkpoint)
    if not ckpt_path.is_file():
        raise DBlinkError(f"{ckpt_path}: no such checkpoint")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        cfg = json.loads(ckpt["config"])
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is a user error here
        raise DBlinkError(f"{ckpt_path}: not a dblink training checkpoint ({exc})") from None
    net = build_model(cfg["arch"], **cfg.get("hparams", {}))
    net.load_state_dict(ckpt["best"])
    from .model import model_hparams
    sim = cfg["sim"]
    meta = {
        "name": name or cfg.get("name", Path(out).stem),
        "arch": cfg["arch"],
        "hparams": model_hparams(cfg["arch"], **cfg.get("hparams", {})),
        "sample": sim.get("sample", "filaments"),
        "pixel_size_nm": sim["pixel_size"],
        "frames_per_step": sim["frames_per_step"],
        "window": cfg.get("window", 25),
        "output": "probability" if net.sigmoid_out else "unbounded",
        "density_range_per_um2_per_frame": cfg.get("ranges", {}).get("density"),
        "training": {"config": cfg, "steps_done": int(ckpt["step"]),
                     "wall_time_s": round(float(ckpt["elapsed_s"]), 1)},
        "validation": ckpt["best_metrics"],
    }
    meta.update(extra or {})
    return save_model(net, out, meta)


def resolve_model(name_or_path: str) -> Path:
    """A model path from a path, or from a bundled name (``filaments`` → ``dblink-filaments.pt``)."""
    p = Path(name_or_path)
    if p.suffix == ".pt" or os.sep in name_or_path:
        if not p.is_file():
            raise DBlinkError(f"{p}: no such model file")
        return p
    for d in models_dirs():
        for cand in (d / f"{name_or_path}.pt", d / f"dblink-{name_or_path}.pt"):
            if cand.is_file():
                return cand
    known = ", ".join(sorted(m.stem for d in models_dirs() if d.is_dir() for m in d.glob("*.pt")))
    raise DBlinkError(f"no model named {name_or_path!r} (bundled: {known or 'none'}); "
                      f"give a path to a .pt file")


def load_model(name_or_path: str | Path) -> LoadedModel:
    """Load a TorchScript model file (by path or bundled name) and check its metadata."""
    path = resolve_model(str(name_or_path))
    files = {META_FILE: ""}
    ctx = _quiet_jit()
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    except Exception as exc:  # noqa: BLE001
        raise DBlinkError(f"{path}: not a TorchScript model file ({str(exc).splitlines()[0]})") from None
    finally:
        ctx.__exit__(None, None, None)
    if not files[META_FILE]:
        raise DBlinkError(f"{path}: TorchScript file without dblink metadata ({META_FILE})")
    try:
        meta = json.loads(files[META_FILE])
    except ValueError:
        raise DBlinkError(f"{path}: unreadable dblink metadata") from None
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise DBlinkError(f"{path}: made by a newer dblink (model format {meta['format_version']}, "
                          f"this dblink reads up to {FORMAT_VERSION}); upgrade dblink")
    for key in ("pixel_size_nm", "frames_per_step"):
        if key not in meta:
            raise DBlinkError(f"{path}: metadata lacks {key!r}")
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
    if not src.is_file():
        raise DBlinkError(f"{src}: no such file")
    try:
        sd = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise DBlinkError(f"{src}: not a plain PyTorch state dict ({str(exc).splitlines()[0][:120]}); "
                          f"re-save it with torch.save(model.state_dict(), path)") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    cells = sorted(int(k.split(".")[2]) for k in sd
                   if k.startswith("forward_net.cell_list.") and k.endswith(".conv.weight"))
    head = sorted(int(k.split(".")[1]) for k in sd if k.startswith("conv_net.") and k.endswith(".weight"))
    if not cells or not head:
        raise DBlinkError(f"{src}: not an original DBlink state dict (no forward_net.cell_list.* "
                          f"or conv_net.* weights)")
    w0 = sd["forward_net.cell_list.0.conv.weight"]
    hidden, kernel = w0.shape[0] // 4, w0.shape[-1]
    head_ch = [sd[f"conv_net.{i}.weight"].shape[0] for i in head[:-1]]
    head_k = sd[f"conv_net.{head[0]}.weight"].shape[-1]
    hp = dict(hidden=hidden, layers=len(cells), kernel=kernel, head=head_ch, head_kernel=head_k,
              log_input=False, out_activation="none")
    net = build_model("paper", **hp)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise DBlinkError(f"{src}: weights do not fit the paper architecture "
                          f"({str(exc).splitlines()[0][:160]})") from None
    meta = {"name": name or Path(out).stem, "arch": "paper", "hparams": hp,
            "pixel_size_nm": float(pixel_size_nm), "frames_per_step": int(frames_per_step),
            "window": int(window), "output": "unbounded",
            "imported_from": {"file": src.name, "note": "original DBlink weights (Saguy et al.)"}}
    return save_model(net, out, meta)
