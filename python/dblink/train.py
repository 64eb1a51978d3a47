"""Training on simulated movies generated on the fly.

Loss = MSE (structure pixels weighted by ``pos_weight``) + ``temporal`` · mean|y_t − y_{t−1}|
+ ``tv`` · total variation; Adam (betas 0.99, 0.999), ReduceLROnPlateau (patience 3) on the
validation loss. Every sample is simulated from the seed ``[seed, 0, index]`` and validation clips
from ``[seed, 1, index]``, so a run is reproducible and resumable and validation never sees a
training movie (``dblink evaluate`` uses ``[seed, 2, index]``).

A run folder holds ``config.json``, ``checkpoint.pt`` (last and best weights, optimizer, step; a
plain state dict loadable with ``weights_only=True``) and ``log.csv``.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import fields
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .errors import DBlinkError
from .metrics import evaluate_video
from .model import build_model
from .progress import Progress
from .simulate import SimConfig, SimRanges, simulate_movie

PRESETS = ("filaments", "mitochondria")
TRAIN, VALIDATION, EVALUATION = 0, 1, 2  # seed streams


def load_config(preset: str | None = None, path: str | None = None,
                overrides: dict | None = None) -> dict:
    """A training config from a preset name or a JSON file, with ``overrides`` applied on top."""
    if path:
        try:
            cfg = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise DBlinkError(f"{path}: cannot read the training config ({exc})") from None
    elif preset:
        if preset not in PRESETS:
            raise DBlinkError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
        cfg = json.loads(resources.files("dblink.presets").joinpath(f"{preset}.json").read_text())
    else:
        raise DBlinkError("give --preset NAME or --config FILE")
    for k, v in (overrides or {}).items():
        if isinstance(v, dict):
            cfg.setdefault(k, {}).update(v)
        else:
            cfg[k] = v
    return cfg


def sim_base(cfg: dict) -> SimConfig:
    names = {f.name for f in fields(SimConfig)}
    return SimConfig(**{k: v for k, v in cfg["sim"].items() if k in names})


def sim_ranges(cfg: dict) -> SimRanges:
    return SimRanges(**{k: tuple(v) for k, v in cfg.get("ranges", {}).items()})


def sample_movie(cfg: dict, stream: int, index: int):
    """The simulated movie number ``index`` of a seed stream (TRAIN, VALIDATION, EVALUATION)."""
    rng = np.random.default_rng([cfg["seed"], stream, index])
    sim_cfg = sim_ranges(cfg).draw(rng, sim_base(cfg))
    return simulate_movie(sim_cfg, [cfg["seed"], stream, index, 1])


class SimulatedClips(Dataset):
    """Map-style dataset: item i is (X[T, H, W], Y[T, H, W]) from the seed [seed, stream, i]."""

    def __init__(self, cfg: dict, stream: int, start: int, length: int) -> None:
        self.cfg, self.stream, self.start, self.length = cfg, stream, start, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        sim = sample_movie(self.cfg, self.stream, self.start + i)
        return torch.from_numpy(sim.render()), torch.from_numpy(sim.gt)


def loss_terms(logits: torch.Tensor, gt: torch.Tensor, pos_weight: float, temporal: float,
               tv: float, bce: float = 0.0) -> tuple[torch.Tensor, dict]:
    """The training loss on (B, T, H, W) logits; returns (total, parts).

    MSE on the sigmoid output (structure pixels weighted by ``pos_weight``), plus ``bce`` times the
    binary cross-entropy on the logits (its gradient does not vanish when the sigmoid saturates, so
    training cannot get stuck predicting empty frames), plus the temporal and TV terms.
    """
    logits = logits.float()
    y = torch.sigmoid(logits)
    w = 1.0 + (pos_weight - 1.0) * gt
    mse = (w * (y - gt) ** 2).mean()
    temp = (y[:, 1:] - y[:, :-1]).abs().mean() if y.shape[1] > 1 else y.new_zeros(())
    tvv = (y[..., 1:, :] - y[..., :-1, :]).abs().mean() + (y[..., 1:] - y[..., :-1]).abs().mean()
    total = mse + temporal * temp + tv * tvv
    parts = {"mse": float(mse.detach()), "temporal": float(temp.detach()), "tv": float(tvv.detach())}
    if bce:
        b = torch.nn.functional.binary_cross_entropy_with_logits(logits, gt, weight=w)
        total = total + bce * b
        parts["bce"] = float(b.detach())
    return total, parts


def validate(model: torch.nn.Module, clips: list, device: torch.device, loss_cfg: dict) -> dict:
    """Loss and paper-binarization scores over the validation clips (whole clips, no windowing)."""
    model.eval()
    preds, gts, losses = [], [], []
    with torch.inference_mode():
        for x, g in clips:
            logits = model(x[None].to(device), None, True)
            loss, _ = loss_terms(logits, g[None].to(device), **loss_cfg)
            losses.append(float(loss))
            preds.append(torch.sigmoid(logits.float())[0].cpu().numpy())
            gts.append(g.numpy())
    model.train()
    m = evaluate_video(np.concatenate(preds), np.concatenate(gts))
    m["loss"] = float(np.mean(losses))
    return m


def train(cfg: dict, run_dir: str | Path, resume: bool = False, device: str = "auto",
          progress: str = "bar") -> dict:
    """Train (or resume) a model; returns the best validation metrics."""
    from .engine import pick_device

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path = run / "checkpoint.pt"
    if resume:
        if not ckpt_path.is_file():
            raise DBlinkError(f"{ckpt_path}: nothing to resume")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        cfg = json.loads(ckpt["config"])
    elif ckpt_path.exists():
        raise DBlinkError(f"{run}: already holds a run (use --resume, or another folder)")
    (run / "config.json").write_text(json.dumps(cfg, indent=2))
    dev = pick_device(device)
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg["arch"], **cfg.get("hparams", {})).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(0.99, 0.999))
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    step, best, best_state = 0, {"f1": -1.0}, None
    elapsed0 = 0.0
    if resume:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        step, best, best_state = int(ckpt["step"]), dict(ckpt["best_metrics"]), ckpt["best"]
        elapsed0 = float(ckpt["elapsed_s"])
    loss_cfg = dict(cfg["loss"])
    val_clips = [SimulatedClips(cfg, VALIDATION, 0, cfg["n_val"])[i] for i in range(cfg["n_val"])]
    n_total = int(cfg["steps"])
    data = SimulatedClips(cfg, TRAIN, step * cfg["batch"], (n_total - step) * cfg["batch"])
    loader = DataLoader(data, batch_size=cfg["batch"], shuffle=False,
                        num_workers=int(cfg.get("num_workers", 0)),
                        persistent_workers=bool(cfg.get("num_workers", 0)),
                        pin_memory=dev.type == "cuda")
    amp = bool(cfg.get("amp", True)) and dev.type == "cuda"
    log_path = run / "log.csv"
    new_log = not log_path.exists()
    t0 = time.perf_counter()
    budget_s = float(cfg.get("max_minutes", 0)) * 60.0
    model.train()

    def save() -> None:
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "step": step, "config": json.dumps(cfg),
                 "best": best_state if best_state is not None else model.state_dict(),
                 "best_metrics": best, "elapsed_s": elapsed0 + time.perf_counter() - t0}
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(ckpt_path)

    with open(log_path, "a", newline="") as logf, Progress(n_total, progress, "train", "it") as bar:
        log = csv.writer(logf)
        if new_log:
            log.writerow(["step", "elapsed_s", "lr", "loss", "mse", "val_loss", "val_f1",
                          "val_fidelity", "val_hallucination"])
        bar.update(step)
        running = []
        for x, g in loader:
            x, g = x.to(dev, non_blocking=True), g.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x, None, True)
            loss, parts = loss_terms(logits, g, **loss_cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            running.append((float(loss.detach()), parts["mse"]))
            bar.update(1)
            out_of_time = budget_s > 0 and time.perf_counter() - t0 > budget_s
            if step % cfg["val_every"] == 0 or step == n_total or out_of_time:
                m = validate(model, val_clips, dev, loss_cfg)
                sched.step(m["loss"])
                if m["f1"] > best["f1"]:
                    best = {k: float(v) for k, v in m.items()}
                    best["step"] = step
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                tl = np.mean(running, axis=0) if running else (float("nan"), float("nan"))
                running = []
                log.writerow([step, round(elapsed0 + time.perf_counter() - t0, 1),
                              opt.param_groups[0]["lr"], round(tl[0], 6), round(tl[1], 6),
                              round(m["loss"], 6), round(m["f1"], 4), round(m["fidelity"], 4),
                              round(m["hallucination"], 5)])
                logf.flush()
                save()
            if out_of_time:
                break
    save()
    return best
