"""Sparse fields and quiet stretches: windows without a single localization are not run through
the network; they get its answer to an empty window (computed once per shape), so the result is
what running them gives."""
import numpy as np
import pytest

from dblink.tables import Localizations


def _clustered(T=30, S=10, size=160, seed=0):
    """Two small clusters in a large field, and a quiet stretch (no localizations) in the middle."""
    rng = np.random.default_rng(seed)
    frames, xs, ys = [], [], []
    for cx, cy in ((20 * 40, 20 * 40), (130 * 40, 140 * 40)):
        f = rng.integers(1, T * S + 1, 400)
        f = f[(f < 8 * S) | (f > 18 * S)]  # steps 8-18 hold nothing
        frames.append(f)
        xs.append(cx + rng.normal(0, 80, f.size))
        ys.append(cy + rng.normal(0, 80, f.size))
    f = np.concatenate(frames)
    order = np.argsort(f, kind="stable")
    return Localizations(frame=f[order].astype(np.int64), x=np.concatenate(xs)[order],
                         y=np.concatenate(ys)[order], source="clusters")


@pytest.mark.parametrize("tile", [None, pytest.param(48, marks=pytest.mark.extra)])  # 48: make test-extra
def test_skipping_empty_windows_gives_what_running_them_gives(tiny_model_file, monkeypatch, tile):
    from dblink import engine
    from dblink.pipeline import reconstruct_table

    locs = _clustered()
    kw = dict(device="cpu", batch=3, progress="none", warn=lambda m: None, window=3, stride=2,
              tile=tile, roi=(0.0, 0.0, 160 * 40.0, 160 * 40.0))
    fast = reconstruct_table(locs, tiny_model_file, **kw)
    assert fast.run.timings["total"] > 0
    monkeypatch.setattr(engine._Runner, "sparse",  # run every window, on the whole field
                        lambda self, x, pos, crop=None: engine._Runner.__call__(self, x, pos))
    full = reconstruct_table(locs, tiny_model_file, **kw)
    for a, b in ((fast.reconstruction.video, full.reconstruction.video),
                 (fast.reconstruction.confidence, full.reconstruction.confidence)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_windows_are_skipped_and_counted(tiny_model_file):
    from dblink.engine import stream_infer
    from dblink.export import load_model

    video = np.zeros((20, 16, 16), np.float32)
    video[2, 3, 4] = 1.0  # one localization at step 2: windows far from it are empty
    stats = {}
    m = load_model(tiny_model_file)
    out = list(stream_infer(lambda a, b: video[a:b], video.shape, m.module, window=2, stride=1,
                            device="cpu", batch=2, confidence=False, progress="none", stats=stats))
    assert len(out) == 20
    assert stats["skipped_windows"] == 20 - 5  # windows keeping steps 0-4 see step 2


def test_a_sparse_field_is_tiled_automatically():
    from dblink.tiling import sparse_tile

    occ = np.zeros((512, 512), bool)
    occ[10:20, 10:20] = True
    occ[400:410, 300:310] = True
    tile, cost = sparse_tile(occ, halo=32, align=2)
    assert tile == 64 and cost < 0.3  # 4-5 occupied tile inputs of 128 x 128 px
    dense = np.ones((512, 512), bool)
    assert sparse_tile(dense, halo=32)[0] is None  # every tile occupied: tiling only adds halos


def _one_cluster(T=24, size=(150, 130)):
    """A small cluster drifting through a large field (one localization per step, a few px apart)."""
    rng = np.random.default_rng(3)
    video = np.zeros((T,) + size, np.float32)
    for t in range(T):
        video[t, 40 + t + rng.integers(-3, 4), 30 + t // 2 + rng.integers(-3, 4)] += 1.0
    return video


@pytest.mark.parametrize("tta", [1, pytest.param(8, marks=pytest.mark.extra)])  # 8: make test-extra
def test_cropped_windows_give_what_the_whole_field_gives(tiny_model_file, tta):
    """Windows whose localizations fill a small part of the field run on that part (plus two
    halos): with the receptive radius as halo the output is the whole field's, up to rounding;
    the network runs on fewer pixels."""
    from dblink.engine import stream_infer
    from dblink.export import load_model
    from dblink.tiling import receptive_radius

    m = load_model(tiny_model_file)
    video = _one_cluster()
    halo = receptive_radius(m.meta["arch"], m.meta["hparams"], 2 * 3 + 1)
    runs = {}
    for crop in (False, True):
        stats = {}
        out = list(stream_infer(lambda a, b: video[a:b], video.shape, m.module, window=3, stride=2,
                                device="cpu", batch=2, progress="none", stats=stats, halo=halo,
                                align=2, tta=tta, crop=crop))
        runs[crop] = (np.stack([o[1] for o in out]), np.stack([o[2] for o in out]), stats)
    assert runs[False][2]["network_share"] == 1.0
    assert runs[True][2]["network_share"] < 0.8
    for i in (0, 1):
        np.testing.assert_allclose(runs[True][i], runs[False][i], rtol=0, atol=1e-5)


def test_the_crop_box_keeps_a_halo_and_the_half_resolution_grid():
    import torch
    from dblink.engine import Crop

    x = torch.zeros(2, 5, 100, 90)
    x[1, 2, 50, 41] = 1.0
    (Y0, Y1, X0, X1), (y0, y1, x0, x1) = Crop(halo=10, align=2).box(x)
    assert (y0, y1, x0, x1) == (40, 61, 31, 52)            # the localization +- one halo
    assert Y0 % 2 == 0 and (100 - Y1) % 2 == 0 and X0 % 2 == 0 and (90 - X1) % 2 == 0
    assert Y0 <= 30 and Y1 >= 71 and X0 <= 21 and X1 >= 62  # and one more halo of context
    assert Y0 >= 28 and X0 >= 20
    assert Crop(halo=40, align=2).box(x) is None            # the box would be the whole field
    assert Crop(halo=10).box(torch.zeros(1, 3, 20, 20)) is None


def test_an_empty_answer_from_a_shrunk_field_keeps_every_rows_edge_distance_and_parity():
    from dblink.engine import _shrunk

    for n, m in [(250, 64), (251, 64), (131, 64), (132, 64), (100, 64), (7, 2)]:
        size, rows = _shrunk(n, m)
        i = np.arange(n)
        assert (n - size) % 2 == 0 and rows.max() < size and (rows % 2 == i % 2).all()
        near, near_small = np.minimum(i, n - 1 - i), np.minimum(rows, size - 1 - rows)
        assert ((near == near_small) | ((near >= m) & (near_small >= m))).all(), (n, m)
    assert _shrunk(100, 64)[0] == 100 and _shrunk(250, 64)[0] == 130  # small fields run whole
