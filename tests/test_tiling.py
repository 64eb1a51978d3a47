"""Big fields and long movies: tiled = untiled, chunked = unchunked, streamed file = in-memory file."""
import numpy as np
import pytest
import torch

from dblink.engine import infer
from dblink.model import build_model
from dblink.tiling import plan_tiles, receptive_radius, tile_align

TINY = {"paper": dict(head=[8, 8, 4]), "compact": dict(hidden=4, encoder=4, decoder=4, skip=2)}


def _video(T=9, H=48, W=48, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.random((T, H, W)) < 0.05) * rng.integers(1, 4, (T, H, W))).astype(np.float32)


def test_tiles_cover_the_field_once_with_aligned_origins():
    tiles = plan_tiles(47, 50, tile=15, halo=5, align=2)
    cover = np.zeros((47, 50), int)
    for t in tiles:
        cover[t.y0:t.y1, t.x0:t.x1] += 1
        assert t.Y0 % 2 == 0 and t.X0 % 2 == 0 and t.y0 % 2 == 0 and t.x0 % 2 == 0
        assert t.Y0 <= t.y0 and t.Y1 >= t.y1 and t.y0 - t.Y0 in (0, 6) and t.Y1 - t.y1 in (0, 6)
    assert (cover == 1).all()
    assert len(plan_tiles(40, 40, None, 8)) == 1 and len(plan_tiles(40, 40, 64, 8)) == 1


@pytest.mark.parametrize("arch", ["paper", "compact"])
def test_tiled_equals_untiled_with_a_receptive_field_halo(arch):
    """With halo = the exact receptive field (it grows with the window's steps), tiling is exact
    up to float rounding; with a smaller halo the error stays small on sparse inputs."""
    torch.manual_seed(0)
    net = torch.jit.script(build_model(arch, **TINY[arch]).eval())
    video, W = _video(), 2
    full = infer(video, net, W, device="cpu", batch=2, confidence=True, progress="none")
    rf = receptive_radius(arch, TINY[arch], 2 * W + 1)
    tiled = infer(video, net, W, device="cpu", batch=2, confidence=True, progress="none",
                  tile=16, halo=rf, align=tile_align(arch))
    np.testing.assert_allclose(tiled.video, full.video, atol=1e-5)
    np.testing.assert_allclose(tiled.confidence, full.confidence, atol=1e-4)
    small = infer(video, net, W, device="cpu", batch=2, confidence=False, progress="none",
                  tile=16, halo=8, align=tile_align(arch))
    assert np.abs(small.video - full.video).max() < 0.2


def test_tiled_normalization_uses_the_whole_frame():
    torch.manual_seed(0)
    net = build_model("paper", out_activation="none", **TINY["paper"]).eval()
    video = _video(T=6, H=32, W=32)
    full = infer(video, net, 2, device="cpu", normalize=True, progress="none")
    tiled = infer(video, net, 2, device="cpu", normalize=True, progress="none", tile=16,
                  halo=receptive_radius("paper", TINY["paper"], 5))
    np.testing.assert_allclose(tiled.video, full.video, atol=1e-4)
    np.testing.assert_allclose(tiled.confidence, full.confidence, atol=1e-3)


@pytest.mark.parametrize("stride", [1, 3])
def test_chunked_equals_unchunked_exactly(stride):
    torch.manual_seed(2)
    net = torch.jit.script(build_model("compact", **TINY["compact"]).eval())
    video = _video(T=23, H=12, W=14, seed=3)
    kw = dict(device="cpu", batch=2, confidence=True, progress="none", stride=stride)
    whole = infer(video, net, 4, chunk=10_000, **kw)
    for chunk in (1, 2, 5):
        part = infer(video, net, 4, chunk=chunk, **kw)
        np.testing.assert_array_equal(part.video, whole.video)
        np.testing.assert_array_equal(part.confidence, whole.confidence)
