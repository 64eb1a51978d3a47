import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "thunderstorm-real"

torch.set_num_threads(min(2, os.cpu_count() or 1))


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
