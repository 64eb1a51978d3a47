"""Training on simulated movies generated on the fly.

Loss = MSE (structure pixels weighted by ``pos_weight``) + ``temporal`` · mean|y_t − y_{t−1}|
+ ``tv`` · total variation (+ ``bce`` · cross-entropy, + ``f1`` · (1 − :func:`soft_f1`) when the
config's ``loss`` names them); Adam (betas 0.99, 0.999), ReduceLROnPlateau (patience 3) on the
validation loss. Every sample is simulated from the seed ``[seed, 0, index]`` and validation clips
from ``[seed, 1, index]``, so a run is reproducible and resumable and validation never sees a
training movie (``dblink evaluate`` uses ``[seed, 2, index]``).

Domains (issue 12): a config may list ``"domains": {"ours": 0.5, "paper": 0.25, "camera": 0.25}``
(weights); each sample then draws its domain from its seed, and ``"domain_ranges": {"paper": {...}}``
overrides ``"ranges"`` for one domain. ``"camera_bank": N`` draws camera-domain clips from a bank of N
seeds per stream, so that their (slow) localization is cached on disk and reused. Training stops after
``"steps"`` iterations (``"max_minutes"`` > 0 adds a wall-time limit, which makes a run depend on the
machine); the code version (``git describe``) is written into the config, hence into the model file.

A run folder holds ``config.json``, ``checkpoint.pt`` (last and best weights, optimizer, step; a
plain state dict loadable with ``weights_only=True``) and ``log.csv``.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import time
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .errors import DBlinkError
from .metrics import evaluate_video
from .model import adapt_state_dict, build_model
from .progress import Progress
from .simulate import DOMAINS, SimConfig, SimRanges, simulate_movie

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


def sim_ranges(cfg: dict, domain: str | None = None) -> SimRanges:
    """The config's ranges, with ``domain_ranges[domain]`` on top."""
    merged = dict(cfg.get("ranges", {}))
    if domain:
        merged.update(cfg.get("domain_ranges", {}).get(domain, {}))
    return SimRanges(**{k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in merged.items()})


CAMERA_STREAM = 1000  # sub-stream of camera-bank seeds


def pick_domain(cfg: dict, rng: np.random.Generator) -> str | None:
    """The domain of one sample, drawn with the config's ``domains`` weights (None without them)."""
    domains = cfg.get("domains")
    if not domains:
        return None
    names = sorted(domains)
    for d in names:
        if d not in DOMAINS:
            raise DBlinkError(f"unknown domain {d!r} in the config (choose from {', '.join(DOMAINS)})")
    w = np.array([float(domains[d]) for d in names])
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def sample_movie(cfg: dict, stream: int, index: int):
    """The simulated movie number ``index`` of a seed stream (TRAIN, VALIDATION, EVALUATION)."""
    rng = np.random.default_rng([cfg["seed"], stream, index])
    seed = [cfg["seed"], stream, index, 1]
    domain = pick_domain(cfg, rng)
    base = sim_base(cfg)
    if domain is not None:
        base = replace(base, domain=domain)
        if domain == "camera" and int(cfg.get("camera_bank", 0)) > 0:
            j = int(rng.integers(int(cfg["camera_bank"])))
            rng = np.random.default_rng([cfg["seed"], stream, CAMERA_STREAM, j])
            seed = [cfg["seed"], stream, CAMERA_STREAM, j, 1]
    sim_cfg = sim_ranges(cfg, domain).draw(rng, base)
    return simulate_movie(sim_cfg, seed)


def code_version() -> str:
    """``git describe --always --dirty`` of the source tree, or the package version outside git."""
    from . import __version__

    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"],
                             cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+git.{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


class SimulatedClips(Dataset):
    """Map-style dataset: item i is (X[T, H, W], Y[T, H, W]) from the seed [seed, stream, i]."""

    def __init__(self, cfg: dict, stream: int, start: int, length: int) -> None:
        self.cfg, self.stream, self.start, self.length = cfg, stream, start, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        sim = sample_movie(self.cfg, self.stream, self.start + i)
        return torch.from_numpy(sim.render()), torch.from_numpy(sim.gt)


def soft_f1(y: torch.Tensor, gt: torch.Tensor, level: float = 100.0 / 255.0,
            tau: float = 0.05) -> torch.Tensor:
    """A differentiable F1 (±1 px) at the paper's binarization of (B, T, H, W) outputs ``y``: each
    frame min-max scaled to [0, 1] as :func:`~.metrics.binarize_paper` does, the step at ``level``
    softened to a sigmoid of width ``tau``, the 8-neighbourhood dilation a 3×3 max-pool; pooled
    over all frames as :func:`~.metrics.scores` pools them."""
    import torch.nn.functional as F

    lo = y.amin(dim=(-2, -1), keepdim=True)
    hi = y.amax(dim=(-2, -1), keepdim=True)
    s = torch.sigmoid(((y - lo) / (hi - lo + 1e-6) - level) / tau)
    dil = (lambda v: F.max_pool2d(v.reshape(-1, 1, *v.shape[-2:]), 3, 1, 1).reshape(v.shape))
    eps = 1e-6
    precision = (s * dil(gt)).sum() / (s.sum() + eps)
    recall = (gt * dil(s)).sum() / (gt.sum() + eps)
    return 2 * precision * recall / (precision + recall + eps)


def loss_terms(logits: torch.Tensor, gt: torch.Tensor, pos_weight: float, temporal: float,
               tv: float, bce: float = 0.0, f1: float = 0.0) -> tuple[torch.Tensor, dict]:
    """The training loss on (B, T, H, W) logits; returns (total, parts).

    MSE on the sigmoid output (structure pixels weighted by ``pos_weight``), plus ``bce`` times the
    binary cross-entropy on the logits (its gradient does not vanish when the sigmoid saturates, so
    training cannot get stuck predicting empty frames), plus the temporal and TV terms, plus ``f1``
    times 1 − :func:`soft_f1` (what the evaluation scores: F1 at the paper's per-frame min-max
    binarization, which an output's brightest spots and faint haze move).
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
    if f1:
        sf = soft_f1(y, gt)
        total = total + f1 * (1.0 - sf)
        parts["soft_f1"] = float(sf.detach())
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


def plot_log(run_dir: str | Path) -> Path | None:
    """Plot a run's ``log.csv`` as ``curves.png``: training loss, validation loss and F1 per step."""
    from .pictures import line_plot

    log = Path(run_dir) / "log.csv"
    rows = list(csv.DictReader(log.open())) if log.is_file() else []
    if not rows:
        return None
    step = [float(r["step"]) for r in rows]
    col = {k: [float(r[k]) for r in rows] for k in ("loss", "val_loss", "val_f1")}
    top = max(max(col["loss"]), max(col["val_loss"]), 1.0)
    return line_plot(Path(run_dir) / "curves.png",
                     [(step, col["loss"], (31, 119, 180)), (step, col["val_loss"], (255, 127, 14)),
                      (step, col["val_f1"], (44, 160, 44))],
                     xlabel="iteration",
                     title=f"train loss (blue), val loss (orange), val F1 (green); "
                           f"best F1 {max(col['val_f1']):.3f}",
                     ylim=(0.0, top))


def initial_weights(source: str) -> dict:
    """Weights to start training from (config key ``init``): a bundled model name or model file
    (``.pt`` from ``dblink export``), or a training checkpoint (its best weights)."""
    from .export import resolve_model

    path = Path(source) if Path(source).is_file() else resolve_model(source)
    try:  # a TorchScript model file
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    except Exception:  # noqa: BLE001 - not TorchScript: a training checkpoint?
        pass
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        return dict(ckpt["best"])
    except Exception as exc:  # noqa: BLE001
        raise DBlinkError(f"{path}: neither a dblink model file nor a checkpoint ({exc})") from None


class _Distributed:
    """torchrun/DDP context from the environment (WORLD_SIZE, RANK, LOCAL_RANK); a no-op alone."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def start(self, dev: torch.device) -> None:
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")

    def broadcast(self, values: list[float]) -> list[float]:
        """Rank 0's values, on every rank."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        torch.distributed.broadcast(t, src=0)
        return t.tolist()


class _Shard(Dataset):
    """This rank's share of every global batch: the global batch of step s holds samples
    ``start + s·B … start + s·B + B − 1``; rank r of W takes the r-th B/W of them, so a run on W
    processes sees exactly the data of a run on one."""

    def __init__(self, data: SimulatedClips, rank: int, world: int, per_rank: int) -> None:
        self.data, self.rank, self.world, self.per_rank = data, rank, world, per_rank

    def __len__(self) -> int:
        return len(self.data) // self.world

    def __getitem__(self, k: int):
        step, j = divmod(k, self.per_rank)
        return self.data[step * self.per_rank * self.world + self.rank * self.per_rank + j]


LOG_COLUMNS = ("step", "elapsed_s", "lr", "loss", "mse", "val_loss", "val_f1", "val_fidelity",
               "val_hallucination")


def _start_run(cfg: dict | None, run: Path, resume: bool) -> tuple[dict, dict | None]:
    """The run's config and, when resuming, its checkpoint; a folder that holds a run is refused
    unless resuming."""
    ckpt_path = run / "checkpoint.pt"
    if resume:
        if not ckpt_path.is_file():
            raise DBlinkError(f"{ckpt_path}: nothing to resume")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        return json.loads(ckpt["config"]), ckpt
    if ckpt_path.exists():
        raise DBlinkError(f"{run}: already holds a run (use --resume, or another folder)")
    return cfg, None


def _place(ddp: _Distributed, device: str) -> torch.device:
    """The device of this process (its own GPU under torchrun), the process group started."""
    from .engine import pick_device

    dev = pick_device(device)
    if dev.type == "cuda" and ddp.world > 1:
        dev = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(dev)
    ddp.start(dev)
    return dev


def _loader(cfg: dict, ddp: _Distributed, step: int, dev: torch.device) -> DataLoader:
    """This rank's batches of the training stream, from global step ``step`` to ``cfg["steps"]``."""
    per_rank = cfg["batch"] // ddp.world
    clips = SimulatedClips(cfg, TRAIN, step * cfg["batch"], (int(cfg["steps"]) - step) * cfg["batch"])
    return DataLoader(_Shard(clips, ddp.rank, ddp.world, per_rank), batch_size=per_rank,
                      shuffle=False, num_workers=int(cfg.get("num_workers", 0)),
                      persistent_workers=bool(cfg.get("num_workers", 0)),
                      pin_memory=dev.type == "cuda")


class _Trainer:
    """One training run's model, optimizer, scheduler and progress (step, best metrics and
    weights, elapsed time): the optimizer step, validation with its log line, the checkpoint."""

    def __init__(self, cfg: dict, run: Path, ddp: _Distributed, dev: torch.device,
                 ckpt: dict | None) -> None:
        self.cfg, self.run, self.ddp, self.dev = cfg, run, ddp, dev
        torch.manual_seed(cfg["seed"])
        net = build_model(cfg["arch"], **cfg.get("hparams", {}))
        if cfg.get("init") and ckpt is None:
            net.load_state_dict(adapt_state_dict(initial_weights(cfg["init"]), net))
        self.net = net.to(dev)
        self.opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], betas=(0.99, 0.999))
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=0.5, patience=3)
        self.step, self.best, self.best_state, self.elapsed0 = 0, {"f1": -1.0}, None, 0.0
        if ckpt is not None:
            net.load_state_dict(ckpt["model"])
            self.opt.load_state_dict(ckpt["optimizer"])
            self.sched.load_state_dict(ckpt["scheduler"])
            self.step, self.best, self.best_state = int(ckpt["step"]), dict(ckpt["best_metrics"]), ckpt["best"]
            self.elapsed0 = float(ckpt["elapsed_s"])
        self.model = net
        if ddp.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[dev.index] if dev.type == "cuda" else None)
        self.loss_cfg = dict(cfg["loss"])
        self.val_clips = ([SimulatedClips(cfg, VALIDATION, 0, cfg["n_val"])[i] for i in range(cfg["n_val"])]
                          if ddp.main else [])
        self.amp = bool(cfg.get("amp", True)) and dev.type == "cuda"
        self.budget_s = float(cfg.get("max_minutes", 0)) * 60.0
        self.t0 = time.perf_counter()
        self.model.train()

    def elapsed(self) -> float:
        """Seconds of training, this session's and the resumed run's."""
        return self.elapsed0 + time.perf_counter() - self.t0

    def train_step(self, x: torch.Tensor, g: torch.Tensor) -> tuple[float, float]:
        """One optimizer step on a batch; returns its (loss, MSE)."""
        x, g = x.to(self.dev, non_blocking=True), g.to(self.dev, non_blocking=True)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.model(x, None, True)
        loss, parts = loss_terms(logits, g, **self.loss_cfg)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        return float(loss.detach()), parts["mse"]

    def out_of_time(self) -> bool:
        """Past ``max_minutes`` (rank 0's clock decides for every rank)."""
        late = self.budget_s > 0 and time.perf_counter() - self.t0 > self.budget_s
        return self.ddp.broadcast([float(late)])[0] > 0

    def validation(self, running: list) -> list | None:
        """Validate (rank 0), step the scheduler on every rank, keep the best weights; returns the
        log line (rank 0), from the training losses ``running`` since the last validation."""
        m = validate(self.net, self.val_clips, self.dev, self.loss_cfg) if self.ddp.main else {"loss": 0.0}
        self.sched.step(self.ddp.broadcast([m["loss"]])[0])
        if not self.ddp.main:
            return None
        if m["f1"] > self.best["f1"]:
            self.best = {k: float(v) for k, v in m.items()}
            self.best["step"] = self.step
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        tl = np.mean(running, axis=0) if running else (float("nan"), float("nan"))
        return [self.step, round(self.elapsed(), 1), self.opt.param_groups[0]["lr"],
                round(tl[0], 6), round(tl[1], 6), round(m["loss"], 6), round(m["f1"], 4),
                round(m["fidelity"], 4), round(m["hallucination"], 5)]

    def save(self) -> None:
        """Write ``checkpoint.pt`` (rank 0), atomically: last and best weights, optimizer, step."""
        if not self.ddp.main:
            return
        net = self.net
        state = {"model": net.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict(), "step": self.step,
                 "config": json.dumps(self.cfg),
                 "best": self.best_state if self.best_state is not None else net.state_dict(),
                 "best_metrics": self.best, "elapsed_s": self.elapsed()}
        ckpt_path = self.run / "checkpoint.pt"
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(ckpt_path)


def train(cfg: dict, run_dir: str | Path, resume: bool = False, device: str = "auto",
          progress: str = "bar") -> dict:
    """Train (or resume) a model; returns the best validation metrics.

    Runs unchanged under ``torchrun --nproc_per_node N`` (DDP; NCCL on GPUs, gloo on CPUs): the
    global batch ``cfg["batch"]`` is split over the processes, gradients are averaged, and rank 0
    validates, logs and writes the checkpoint.
    """
    ddp = _Distributed()
    run = Path(run_dir)
    cfg, ckpt = _start_run(cfg, run, resume)
    if cfg["batch"] % ddp.world:
        raise DBlinkError(f"batch {cfg['batch']} is not divisible by {ddp.world} processes")
    dev = _place(ddp, device)
    if not resume:
        cfg = dict(cfg, code_version=code_version())
    if ddp.main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(cfg, indent=2))
    trainer = _Trainer(cfg, run, ddp, dev, ckpt)
    del ckpt
    n_total = int(cfg["steps"])
    loader = _loader(cfg, ddp, trainer.step, dev)
    log_path = run / "log.csv"
    new_log = not log_path.exists()
    with contextlib.ExitStack() as stack:
        logf = stack.enter_context(open(log_path, "a", newline="")) if ddp.main else None
        bar = stack.enter_context(Progress(n_total, progress if ddp.main else "none", "train", "it"))
        log = csv.writer(logf) if logf else None
        if log and new_log:
            log.writerow(LOG_COLUMNS)
        bar.update(trainer.step)
        running = []
        for x, g in loader:
            running.append(trainer.train_step(x, g))
            bar.update(1)
            out_of_time = trainer.out_of_time()
            if trainer.step % cfg["val_every"] == 0 or trainer.step == n_total or out_of_time:
                row = trainer.validation(running)
                if log:
                    log.writerow(row)
                    logf.flush()
                    plot_log(run)
                running = []
                trainer.save()
            if out_of_time:
                break
    trainer.save()
    if ddp.world > 1:
        torch.distributed.barrier()
    return trainer.best
