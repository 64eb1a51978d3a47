import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "thunderstorm-real"


def _threads_per_worker() -> int:
    """Torch threads for one test process: the cores shared among pytest-xdist's workers (at
    most 2). Two workers of two threads each on two cores oversubscribe them, and PyTorch's
    spin-waiting threads then make small models crawl (test_train's 150 steps: 218 s instead of
    10 s on a busy 2-core machine)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(2, cores // workers))


# the same count for the dblink processes the tests start (CLI runs, Fiji's routes), whose
# results some tests compare bit for bit with in-process runs (thread counts differ by 1 ULP)
os.environ.setdefault("OMP_NUM_THREADS", str(_threads_per_worker()))
THREADS = int(os.environ["OMP_NUM_THREADS"])
torch.set_num_threads(THREADS)


@pytest.fixture
def tiny_model_file(tmp_path):
    """A small untrained compact model saved as a real model file (metadata included)."""
    from dblink.export import save_model
    from dblink.model import build_model, model_hparams

    torch.manual_seed(0)
    hp = dict(hidden=4, encoder=4, decoder=4, skip=2)
    net = build_model("compact", **hp)
    path = tmp_path / "tiny.pt"
    save_model(net, path, {"name": "tiny", "arch": "compact", "hparams": model_hparams("compact", **hp),
                           "pixel_size_nm": 40.0, "frames_per_step": 10, "window": 3,
                           "output": "probability", "density_range_per_um2_per_frame": [0.1, 1.0]})
    return path


def write_csv(path, header, rows):
    with open(path, "w") as fh:
        fh.write(header + "\n")
        for r in rows:
            fh.write(",".join(str(v) for v in r) + "\n")
    return path


def original_state_dict(seed: int = 0) -> dict:
    """Random weights in the layout of the original DBlink code (paper architecture)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for net in ("forward_net", "reverse_net"):
        for i, cin in enumerate((1 + 4, 4 + 4)):
            sd[f"{net}.cell_list.{i}.conv.weight"] = torch.randn(16, cin, 5, 5, generator=g) * 0.1
            sd[f"{net}.cell_list.{i}.conv.bias"] = torch.randn(16, generator=g) * 0.1
    for j, (cin, cout) in zip((0, 2, 4, 6), ((8, 128), (128, 256), (256, 64), (64, 1))):
        sd[f"conv_net.{j}.weight"] = torch.randn(cout, cin, 5, 5, generator=g) * 0.02
        sd[f"conv_net.{j}.bias"] = torch.randn(cout, generator=g) * 0.02
    return sd
