"""The DBlink network: a bidirectional convolutional LSTM with a CNN head.

Input: a window of localization maps ``x`` of shape (B, T, H, W) (counts per render pixel and step).
Output: the reconstruction at the requested steps, (B, P, H, W); ``positions`` picks which of the T
steps are decoded, so that inference decodes only the steps it keeps.

Two architectures share the ConvLSTM cell:

* ``paper`` — the network of Saguy et al.: 2 ConvLSTM layers per direction, 4 hidden channels,
  5×5 kernels, at full resolution; the forward and backward last-layer outputs are concatenated per
  step and decoded by 2·4→128→256→64→1 convolutions (5×5, ReLU). Parameter names follow the original
  code (``forward_net.cell_list.{i}.conv``, ``reverse_net…``, ``conv_net.{0,2,4,6}``).
* ``compact`` — the recurrence runs at half resolution with more hidden channels (a stride-2
  convolutional encoder), then a transposed-convolution decoder joined with a full-resolution skip
  branch from the step's own localization map. About 40× fewer multiply-adds per pixel than
  ``paper``; it trains on a CPU. With ``mean_input`` (issue 12, off in models made before it) the
  mean of the whole input window over time — what the classical sum knows — is a second input
  channel of the encoder and of the skip branch at every step, as ``log1p(mean_scale · mean)``
  (about the log of the ±25-step sum), so that a static or slow sample is never worse than its sum.
  With ``local_mean = k`` (k > 0) a further channel holds each step's own mean over ±k steps
  (truncated at the window's ends), as ``log1p((2k + 1) · mean)``: what the short sum knows, for
  movies too fast for the window-wide mean.

Both are scriptable with ``torch.jit.script`` and need nothing from dblink once exported. On CPUs
they take fast paths that compute the same function within fp32 rounding (tanh as 2·sigmoid(2x) − 1,
channels-last convolutions where oneDNN is faster; issue 18); :func:`set_cpu_fast` turns them off,
which gives the original code's arithmetic bit for bit. The code is frozen in a model file when it
is scripted: ``tools/rescript_model.py`` brings an older file up to date (same weights).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from .modelmeta import ARCHITECTURES, input_channels  # the schema: defaults, input channels


def _tanh(x: Tensor, fast: bool) -> Tensor:
    """tanh; with ``fast``, for float32, as 2·sigmoid(2x) − 1 (the same function within fp32
    rounding, ~1e-7; PyTorch's CPU tanh is ~6× slower than its sigmoid). In 16-bit formats (under
    ``--precision bf16``) that form loses the small values' precision, so tanh is kept there."""
    if fast and x.dtype == torch.float32:
        return torch.sigmoid(2 * x) * 2 - 1
    return torch.tanh(x)


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell: the four gates (i, f, o, g) come from one convolution over [input, hidden]."""

    def __init__(self, in_channels: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)
        #: the CPU fast path (tanh from sigmoid); off in the bench's reference (:func:`set_cpu_fast`)
        self.cpu_fast = True

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> Tuple[Tensor, Tensor]:
        fast = self.cpu_fast and x.device.type == "cpu"
        i, f, o, g = torch.chunk(self.conv(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * _tanh(g, fast)
        h = torch.sigmoid(o) * _tanh(c, fast)
        return h, c


class ConvLSTM(nn.Module):
    """A stack of ConvLSTM layers run over time in one direction; returns the last layer's outputs."""

    def __init__(self, in_channels: int, hidden: int, kernel: int, layers: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.cell_list = nn.ModuleList(
            [ConvLSTMCell(in_channels if i == 0 else hidden, hidden, kernel) for i in range(layers)])

    def forward(self, x: Tensor, reverse: bool = False) -> Tensor:
        """x: (B, T, C, H, W) -> (B, T, hidden, H, W); ``reverse``: the pass runs from the last
        step to the first (the outputs stay in time order)."""
        B, T, _, H, W = x.shape
        seq = x
        order = list(range(T - 1, -1, -1)) if reverse else list(range(T))
        for cell in self.cell_list:
            h = torch.zeros(B, self.hidden, H, W, dtype=x.dtype, device=x.device)
            c = torch.zeros_like(h)
            outs: List[Tensor] = []
            for t in order:
                h, c = cell(seq[:, t], h, c)
                outs.append(h)
            if reverse:
                outs.reverse()
            seq = torch.stack(outs, dim=1)
        return seq


def _select(feats: Tensor, positions: Optional[Tensor]) -> Tensor:
    if positions is not None:
        feats = feats.index_select(1, positions)
    return feats


class _BiConvLSTMNet(nn.Module):
    def bidirectional(self, x: Tensor, positions: Optional[Tensor] = None) -> Tensor:
        """Forward and backward passes over time, concatenated per decoded step:
        (B, P, 2*hidden, H, W) for the ``positions`` (all T steps without)."""
        fwd = _select(self.forward_net(x), positions)
        bwd = _select(self.reverse_net(x, True), positions)
        return torch.cat([fwd, bwd], dim=2)


class PaperNet(_BiConvLSTMNet):
    """The paper's BiConvLSTM at full resolution (see module docstring)."""

    def __init__(self, hidden: int = 4, layers: int = 2, kernel: int = 5,
                 head: Optional[List[int]] = None, head_kernel: int = 5, log_input: bool = False,
                 out_activation: str = "none") -> None:
        super().__init__()
        head = [128, 256, 64] if head is None else list(head)
        self.log_input = log_input
        self.sigmoid_out = out_activation == "sigmoid"
        #: the CPU fast path: decode channels-last (oneDNN's 5x5 convolutions run ~15 % faster);
        #: the bench's reference loop turns it off (:func:`set_cpu_fast`)
        self.cpu_fast = True
        self.forward_net = ConvLSTM(1, hidden, kernel, layers)
        self.reverse_net = ConvLSTM(1, hidden, kernel, layers)
        mods: List[nn.Module] = []
        chans = [2 * hidden] + head
        for a, b in zip(chans[:-1], chans[1:]):
            mods += [nn.Conv2d(a, b, head_kernel, padding=head_kernel // 2), nn.ReLU()]
        mods.append(nn.Conv2d(chans[-1], 1, head_kernel, padding=head_kernel // 2))
        self.conv_net = nn.Sequential(*mods)

    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        B, T, H, W = x.shape
        if self.log_input:
            x = torch.log1p(x)
        feats = self.bidirectional(x.unsqueeze(2), positions)
        P = feats.shape[1]
        h = feats.reshape(B * P, feats.shape[2], H, W)
        if self.cpu_fast and h.device.type == "cpu":
            h = h.contiguous(memory_format=torch.channels_last)
        y = self.conv_net(h).reshape(B, P, H, W)
        if self.sigmoid_out and not logits:
            y = torch.sigmoid(y)
        return y


class CompactNet(_BiConvLSTMNet):
    """ConvLSTM at half resolution, transposed-convolution decoder plus a full-resolution skip."""

    def __init__(self, hidden: int = 24, layers: int = 1, kernel: int = 3, encoder: int = 16,
                 decoder: int = 16, skip: int = 8, log_input: bool = True,
                 out_activation: str = "sigmoid", mean_input: bool = False,
                 mean_scale: float = 51.0, local_mean: int = 0) -> None:
        super().__init__()
        self.log_input = log_input
        self.sigmoid_out = out_activation == "sigmoid"
        self.mean_input = mean_input
        self.mean_scale = mean_scale
        if local_mean < 0:
            raise ValueError(f"local_mean must be >= 0 steps, not {local_mean}")
        self.local_mean = int(local_mean)
        #: the CPU fast path: the encoder runs channels-last (oneDNN: 2-3x faster here)
        self.cpu_fast = True
        n_in = input_channels(mean_input, local_mean)
        self.encoder = nn.Sequential(nn.Conv2d(n_in, encoder, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(encoder, encoder, 3, stride=2, padding=1), nn.ReLU())
        self.forward_net = ConvLSTM(encoder, hidden, kernel, layers)
        self.reverse_net = ConvLSTM(encoder, hidden, kernel, layers)
        self.skip = nn.Sequential(nn.Conv2d(n_in, skip, 3, padding=1), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(2 * hidden, decoder, 4, stride=2, padding=1),
                                nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(decoder + skip, decoder, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(decoder, 1, 1))

    def forward(self, x: Tensor, positions: Optional[Tensor] = None, logits: bool = False) -> Tensor:
        B, T, H, W = x.shape
        xin = (torch.log1p(x) if self.log_input else x).unsqueeze(2)
        if self.mean_input:  # the window's mean over time, beside every step: (B, T, 2, H, W)
            mean = torch.log1p(self.mean_scale * x.mean(dim=1, keepdim=True))
            xin = torch.cat([xin, mean.unsqueeze(1).expand(B, T, 1, H, W)], dim=2)
        if self.local_mean > 0:  # each step's mean over +-k steps: (B, T, 1, H, W) more
            local = torch.log1p((2 * self.local_mean + 1) * running_mean(x, self.local_mean))
            xin = torch.cat([xin, local.unsqueeze(2)], dim=2)
        C = xin.shape[2]
        xe = xin.reshape(B * T, C, H, W)
        if self.cpu_fast and xe.device.type == "cpu":
            enc = self.encoder(xe.contiguous(memory_format=torch.channels_last)).contiguous()
        else:
            enc = self.encoder(xe)
        enc = enc.reshape(B, T, enc.shape[1], enc.shape[2], enc.shape[3])
        feats = self.bidirectional(enc, positions)
        xs = _select(xin, positions)
        P = feats.shape[1]
        up = self.up(feats.reshape(B * P, feats.shape[2], feats.shape[3], feats.shape[4]))
        up = up[:, :, :H, :W]
        sk = self.skip(xs.reshape(B * P, C, H, W))
        y = self.head(torch.cat([up, sk], dim=1)).reshape(B, P, H, W)
        if self.sigmoid_out and not logits:
            y = torch.sigmoid(y)
        return y


def running_mean(x: Tensor, k: int) -> Tensor:
    """Mean of (B, T, H, W) counts over steps t-k ... t+k for every step t, truncated at both ends
    of the window (a step near an end averages the steps that exist)."""
    T = x.shape[1]
    cs = torch.cat([torch.zeros_like(x[:, :1]), torch.cumsum(x, dim=1)], dim=1)
    t = torch.arange(T, device=x.device)
    lo = (t - k).clamp(min=0)
    hi = (t + k + 1).clamp(max=T)
    n = (hi - lo).to(x.dtype).reshape(1, T, 1, 1)
    return (cs.index_select(1, hi) - cs.index_select(1, lo)) / n


def set_cpu_fast(net: nn.Module, on: bool) -> None:
    """Turn the CPU fast paths (channels-last convolutions, tanh from sigmoid: the same function
    within fp32 rounding) on or off in every module of ``net``, a Python or TorchScript module.
    Off, the network computes exactly what the original code did (the bench's reference loop)."""
    for m in net.modules():
        if hasattr(m, "cpu_fast"):
            m.cpu_fast = on


def build_model(arch: str = "compact", **hparams) -> nn.Module:
    """Build a network: ``arch`` is ``paper`` or ``compact``; ``hparams`` override its defaults."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHITECTURES)})")
    params = dict(ARCHITECTURES[arch])
    params.update(hparams)
    return PaperNet(**params) if arch == "paper" else CompactNet(**params)


def adapt_state_dict(state: dict, model: nn.Module) -> dict:
    """Weights of an older model for ``model``: where a convolution gained input channels (e.g.
    ``mean_input``), the old weights fill the first channels and the new ones start at zero, so the
    adapted network computes exactly what the old one did."""
    target = model.state_dict()
    out = {}
    for k, v in state.items():
        t = target.get(k)
        if (t is not None and v.dim() == 4 and t.dim() == 4 and v.shape[0] == t.shape[0]
                and v.shape[2:] == t.shape[2:] and v.shape[1] < t.shape[1]):
            w = torch.zeros_like(t)
            w[:, :v.shape[1]] = v
            v = w
        out[k] = v
    return out


def model_hparams(arch: str, **overrides) -> dict:
    """The full hyper-parameter dict of an architecture (defaults plus overrides)."""
    params = dict(ARCHITECTURES[arch])
    params.update(overrides)
    return params


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_per_pixel(model: nn.Module, steps: int = 8, size: int = 64) -> float:
    """Multiply-adds per pixel per step of a (B, T, H, W) forward pass decoding every step,
    counted over all convolutions (the elementwise gate arithmetic is not counted)."""
    total = [0]

    def hook(mod: nn.Module, inp, out) -> None:
        if isinstance(mod, nn.ConvTranspose2d):  # each input element meets the whole kernel
            total[0] += inp[0].numel() * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, steps, size, size))
    finally:
        for h in handles:
            h.remove()
    return total[0] / (steps * size * size)
