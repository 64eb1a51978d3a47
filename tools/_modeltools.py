"""What the model-file tools share (``rescript_model.py``, ``widen_model.py``, ``soup_models.py``):
a flag's value taken out of the arguments, a loaded model's network as plain (eager) PyTorch, and
the largest difference of two networks' outputs on one random sparse window."""
from __future__ import annotations

import torch

from dblink.errors import DBlinkError
from dblink.export import LoadedModel
from dblink.model import build_model

#: networks that differ by more than this on the check window compute another function (fp32
#: rounding of the same one is ~1e-7)
SAME_FUNCTION = 1e-5


def take(argv: list[str], flag: str) -> tuple[str | None, list[str]]:
    """``(value, the other arguments)`` of ``flag VALUE`` in ``argv``; ``(None, argv)`` without it."""
    if flag not in argv:
        return None, argv
    i = argv.index(flag)
    if i + 1 >= len(argv):
        raise DBlinkError(f"{flag} needs a value")
    return argv[i + 1], argv[:i] + argv[i + 2:]


def eager(model: LoadedModel) -> torch.nn.Module:
    """The model file's network rebuilt from its metadata with the current code, its weights loaded
    (evaluation mode)."""
    net = build_model(model.meta["arch"], **model.meta.get("hparams", {})).eval()
    net.load_state_dict(model.module.state_dict())
    return net


def output_difference(a: torch.nn.Module, b: torch.nn.Module, window: int) -> float:
    """Largest |a(x) − b(x)| on one random window of 2·``window`` + 1 steps of 48 × 48 px with 3 %
    of the pixels holding localizations (seed 0)."""
    torch.manual_seed(0)
    x = torch.rand(2, 2 * int(window) + 1, 48, 48)
    x = x * (torch.rand_like(x) < 0.03)
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())
