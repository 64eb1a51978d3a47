"""Training: the loss goes down; runs checkpoint, resume and export."""
import json

import numpy as np
import pytest
import torch

from dblink.export import export_checkpoint, load_model
from dblink.model import build_model
from dblink.train import SimulatedClips, load_config, loss_terms, train

TINY = {"hparams": {"hidden": 4, "encoder": 4, "decoder": 4, "skip": 2},
        "sim": {"height_px": 24, "width_px": 24, "n_steps": 6}, "batch": 2, "n_val": 2,
        "val_every": 2, "num_workers": 0}


def test_a_tiny_model_learns_structure():
    """Training drives the loss below the best constant prediction: it learns where filaments are."""
    cfg = load_config("filaments", overrides={
        "hparams": {"hidden": 8, "encoder": 8, "decoder": 8, "skip": 4},
        "sim": {"height_px": 32, "width_px": 32, "n_steps": 6},
        "ranges": {"n_structures": [1, 2], "density": [0.8, 1.0]}})
    data = SimulatedClips(cfg, 0, 0, 4)
    x = torch.stack([data[i][0] for i in range(4)])
    g = torch.stack([data[i][1] for i in range(4)])
    w = 1.0 + (cfg["loss"]["pos_weight"] - 1.0) * g
    p = (w * g).sum() / w.sum()
    best_constant = float((w * (p - g) ** 2).mean())
    torch.manual_seed(0)
    net = build_model("compact", **cfg["hparams"])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.99, 0.999))
    losses = []
    for _ in range(80):
        loss, parts = loss_terms(net(x, None, True), g, **cfg["loss"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["mse"])
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(losses[-5:]) < 0.95 * best_constant


def test_samples_are_reproducible_and_streams_disjoint():
    cfg = load_config("filaments", overrides=TINY)
    a = SimulatedClips(cfg, 0, 0, 2)[1]
    b = SimulatedClips(cfg, 0, 1, 1)[0]
    torch.testing.assert_close(a[0], b[0])
    v = SimulatedClips(cfg, 1, 0, 2)[1]
    assert not torch.equal(a[1], v[1])


def test_run_resume_and_export(tmp_path):
    cfg = load_config("filaments", overrides=dict(TINY, steps=4, max_minutes=0))
    run = tmp_path / "run"
    best = train(cfg, run, device="cpu", progress="none")
    assert best["step"] in (2, 4) and 0 <= best["f1"] <= 1
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and len(log) == 3
    assert (run / "curves.png").stat().st_size > 0
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 4
    # resume of a finished run changes nothing; a longer run continues from step 4
    cfg2 = json.loads(ck["config"])
    cfg2["steps"] = 6
    ck["config"] = json.dumps(cfg2)
    torch.save(ck, run / "checkpoint.pt")
    train(None, run, resume=True, device="cpu", progress="none")
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 6
    assert len((run / "log.csv").read_text().splitlines()) == 4
    out = export_checkpoint(run / "checkpoint.pt", tmp_path / "m.pt")
    m = load_model(out)
    assert m.meta["arch"] == "compact" and m.pixel_size == 40.0 and m.frames_per_step == 10
    assert m.meta["training"]["steps_done"] == 6 and "f1" in m.meta["validation"]


@pytest.mark.extra  # ~8 s of process starts: make test-extra (CI runs it)
def test_torchrun_ddp_on_two_cpu_processes_matches_one_process(tmp_path):
    """`torchrun --nproc_per_node 2` (gloo) trains the same model as one process: same data, the
    global batch split in two, gradients averaged."""
    import os
    import subprocess
    import sys

    cfg = load_config("filaments", overrides=dict(TINY, steps=3, val_every=3, batch=4, n_val=1))
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    train(cfg, tmp_path / "one", device="cpu", progress="none")  # one process: this one
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "dblink.cli", "train", "--config",
                          str(tmp_path / "cfg.json"), "-o", str(tmp_path / "two"), "--device", "cpu",
                          "--progress", "none"], capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 3
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-5, rtol=1e-4)
    assert len((tmp_path / "two" / "log.csv").read_text().splitlines()) == 2  # one writer


def test_init_starts_from_a_model_file(tmp_path):
    from dblink.export import save_model
    from dblink.model import build_model, model_hparams
    from dblink.train import initial_weights

    hp = TINY["hparams"]
    torch.manual_seed(5)
    net = build_model("compact", **hp)
    path = save_model(net, tmp_path / "init.pt", {"name": "init", "arch": "compact",
                                                   "hparams": model_hparams("compact", **hp),
                                                   "pixel_size_nm": 40.0, "frames_per_step": 10,
                                                   "window": 3, "output": "probability"})
    sd = initial_weights(str(path))
    assert sd.keys() == net.state_dict().keys()
    # lr 0: the run's weights are the initial ones
    cfg = load_config("filaments", overrides=dict(TINY, steps=1, lr=0.0, init=str(path)))
    train(cfg, tmp_path / "run", device="cpu", progress="none")
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(ck["model"][k], v)
    # a checkpoint works as a source too (its best weights)
    assert initial_weights(str(tmp_path / "run" / "checkpoint.pt")).keys() == sd.keys()


def test_soft_f1_is_the_evaluated_f1_made_differentiable():
    """soft_f1 tends to metrics.scores' F1 (±1 px, paper binarization) as its step sharpens, and
    the f1 loss term moves the output towards it."""
    from dblink.metrics import binarize_paper, scores
    from dblink.train import soft_f1

    torch.manual_seed(0)
    gt = (torch.rand(2, 5, 32, 32) < 0.1).float()
    y = torch.rand(2, 5, 32, 32) * 0.5 + gt * 0.4
    hard = scores(binarize_paper(y.reshape(-1, 32, 32).numpy()), gt.reshape(-1, 32, 32).numpy())["f1"]
    assert abs(float(soft_f1(y, gt, tau=1e-3)) - hard) < 2e-3
    assert abs(float(soft_f1(y, gt)) - hard) < 0.02
    logits = torch.logit(y.clamp(1e-3, 1 - 1e-3)).requires_grad_(True)
    cfg = dict(pos_weight=1.0, temporal=0.0, tv=0.0)
    base, _ = loss_terms(logits, gt, **cfg)
    total, parts = loss_terms(logits, gt, **cfg, f1=1.0)
    assert abs(float((total - base).detach()) - (1 - parts["soft_f1"])) < 1e-5
    total.backward()
    with torch.no_grad():
        better = soft_f1(torch.sigmoid(logits - 0.5 * logits.grad / logits.grad.abs().max()), gt)
    assert float(better) > parts["soft_f1"]
