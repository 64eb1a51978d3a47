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


def _random_locs(n=3000, frames=400, size_nm=1200.0, seed=4, shuffle=True):
    from dblink.tables import Localizations
    rng = np.random.default_rng(seed)
    f = rng.integers(1, frames + 1, n)
    if not shuffle:
        f = np.sort(f)
    return Localizations(frame=f.astype(np.int64), x=rng.random(n) * size_nm,
                         y=rng.random(n) * size_nm, source="random")


@pytest.mark.parametrize("shuffle", [False, True])
def test_step_renderer_equals_render(shuffle):
    from dblink.render import Grid, StepRenderer, render
    locs = _random_locs(shuffle=shuffle)
    g = Grid(100.0, 0.0, 1000.0, 1100.0, 40.0)
    whole = render(locs, g, 10, first_frame=3)
    steps = StepRenderer(locs, g, 10, first_frame=3)
    assert steps.shape == whole.video.shape
    assert (steps.n_inside, steps.n_outside_roi, steps.n_outside_time) == \
        (whole.n_inside, whole.n_outside_roi, whole.n_outside_time)
    for a, b in [(0, 40), (0, 1), (7, 19), (30, 40)]:
        np.testing.assert_array_equal(steps(a, b), whole.video[a:b])


@pytest.mark.parametrize("confidence", [True, False])
def test_streamed_file_equals_the_in_memory_file(tmp_path, tiny_model_file, confidence):
    """reconstruct_to_file (chunked, streamed) writes what reconstruct_table + Result.write does:
    same pixels, same ImageJ metadata (the run's seconds aside)."""
    from dblink.hyperstack import read_hyperstack
    from dblink.pipeline import reconstruct_table, reconstruct_to_file
    locs = _random_locs(shuffle=True)
    kw = dict(device="cpu", batch=2, confidence=confidence, progress="none", exposure=0.01)
    res = reconstruct_table(locs, tiny_model_file, **kw)
    res.write(tmp_path / "mem.tif")
    w = reconstruct_to_file(locs, tmp_path / "str.tif", tiny_model_file, chunk=3, **kw)
    assert w.shape == res.reconstruction.video.shape
    a, ma = read_hyperstack(tmp_path / "mem.tif")
    b, mb = read_hyperstack(tmp_path / "str.tif")
    np.testing.assert_array_equal(a, b)
    for m in (ma, mb):
        m["dblink"].pop("seconds")
        m.pop("Info")
    assert ma == mb
    assert not list(tmp_path.glob(".*.part"))


def test_stream_writer_is_byte_identical_and_atomic(tmp_path):
    from dblink.hyperstack import write_hyperstack, write_hyperstack_stream
    rng = np.random.default_rng(0)
    chans = [rng.random((4, 5, 6), dtype=np.float32) for _ in range(2)]
    write_hyperstack(tmp_path / "a.tif", chans, ["dblink", "confidence"], 40.0, 10, info={"k": 1})
    write_hyperstack_stream(tmp_path / "b.tif", ([c[t] for c in chans] for t in range(4)), (4, 5, 6),
                            ["dblink", "confidence"], 40.0, 10, info={"k": 1})
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()

    def failing():
        yield [c[0] for c in chans]
        raise RuntimeError("cancelled")
    with pytest.raises(RuntimeError):
        write_hyperstack_stream(tmp_path / "c.tif", failing(), (4, 5, 6), ["dblink", "confidence"],
                                40.0, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_network_memory_estimate_counts_the_strided_window():
    from dblink.memory import network_bytes

    hp = {"hidden": 4, "encoder": 4, "decoder": 4, "skip": 2}
    one = network_bytes("compact", hp, 51, 3, 64 * 64)
    assert network_bytes("compact", hp, 51, 3, 64 * 64, batch=4) == 4 * one
    # stride 32: windows of 2·25 + 32 steps instead of 51, 96 decoded steps instead of 3
    assert network_bytes("compact", hp, 82, 96, 64 * 64) > one * 1.5


def test_tiles_only_when_the_whole_field_does_not_fit():
    from dblink.memory import network_bytes, plan_memory

    hp = {"hidden": 24, "encoder": 16, "decoder": 16, "skip": 8}
    # confidence off: every interior window has one signature, so 4 really share a call (with the
    # sampled confidence most windows run alone: test_the_memory_plan_counts_the_largest_call...)
    args = ("compact", hp, 200, 250, 250, 25, 8, False)
    roomy = plan_memory(*args, limit=10 * 2**30)
    assert roomy.tile is None and roomy.batch == 4 and roomy.halo_cost == 0  # E. coli 10 µm at 40 nm
    one_window = network_bytes("compact", hp, 58, 8, 250 * 250)
    assert roomy.network == 4 * one_window
    rest = roomy.total - roomy.network  # the arrays and the run's constant
    tight = plan_memory(*args, limit=rest + 2 * one_window)
    assert tight.tile is None and tight.batch == 1  # fewer windows per call before any tile
    tiled = plan_memory(*args, limit=rest + one_window // 2)
    assert tiled.tile is not None and tiled.total <= rest + one_window // 2
    assert tiled.halo_cost > 0
    assert plan_memory(*args, limit=2**20).total > 2**20  # nothing fits: the caller refuses
    assert plan_memory(*args, limit=2**20, tile=0).tile is None  # --tile 0: never
    assert plan_memory(*args, limit=10 * 2**30, tile=64).tile == 64
    assert plan_memory(*args, limit=10 * 2**30, batch=2).batch == 2


def test_the_memory_plan_counts_the_largest_call_the_movie_makes():
    """largest_call walks a bounded stretch of the plan: the same as the largest call over the
    whole movie's batches (windows with confidence alternates mostly run alone)."""
    from dblink.memory import largest_call, network_bytes
    from dblink.windows import confidence_every_default, iter_batches, iter_windows

    hp = {"hidden": 4}
    for T, W, K, conf in [(40, 10, 1, True), (300, 25, 8, True), (300, 25, 10, True),
                          (200, 25, 1, False), (12, 25, 1, True), (500, 25, 3, True)]:
        every = confidence_every_default(W, K)
        real = max(network_bytes("paper", hp, b[0].stop - b[0].start,
                                 len(b[0].keep) + len(b[0].alt), 64 * 64, len(b))
                   for b in iter_batches(iter_windows(T, W, K, conf, every), 4))
        assert largest_call("paper", hp, T, W, K, conf, every, 4, 64 * 64) == real, (T, W, K, conf)
