"""Windowed inference: exact mode equals the original loop; windows clip at the movie ends."""
import numpy as np
import pytest
import torch

from dblink.bench import reference_loop
from dblink.engine import infer
from dblink.windows import plan_windows
from dblink.model import build_model


def test_windows_clip_at_the_ends():
    ws = plan_windows(10, 3, stride=1)
    assert [(w.start, w.stop) for w in ws[:4]] == [(0, 4), (0, 5), (0, 6), (0, 7)]
    assert (ws[5].start, ws[5].stop, ws[5].keep) == (2, 9, (5,))
    assert (ws[-1].start, ws[-1].stop) == (6, 10)
    assert [w.keep[0] for w in ws] == list(range(10))


@pytest.mark.parametrize("T,W,K", [(10, 3, 1), (23, 4, 3), (5, 25, 2), (40, 5, 8)])
def test_every_step_is_kept_exactly_once_and_sees_its_window(T, W, K):
    ws = plan_windows(T, W, stride=K, confidence=True)
    kept = [k for w in ws for k in w.keep]
    assert sorted(kept) == list(range(T))
    for w in ws:
        for k in w.keep:
            assert w.start == max(0, w.keep[0] - W) and w.stop == min(T, w.keep[-1] + W + 1)
            assert w.start <= k < w.stop
        assert not set(w.alt) & set(w.keep)
        assert all(w.start <= a < w.stop for a in w.alt)


@pytest.mark.parametrize("arch,hp", [("paper", dict(head=[8, 8, 4])),
                                     ("compact", dict(hidden=4, encoder=4, decoder=4, skip=2))])
def test_exact_mode_matches_the_reference_loop(arch, hp):
    torch.manual_seed(0)
    net = build_model(arch, **hp).eval()
    scripted = torch.jit.script(net)
    rng = np.random.default_rng(0)
    video = (rng.random((13, 17, 19)) < 0.05).astype(np.float32) * rng.integers(1, 4, (13, 17, 19))
    ref = reference_loop(video, net, window=4)
    for batch in (1, 3):
        rec = infer(video, scripted, window=4, stride=1, device="cpu", batch=batch,
                    confidence=True, progress="none")
        np.testing.assert_allclose(rec.video, ref, atol=1e-5)
        assert rec.confidence.shape == video.shape
        c = rec.confidence[~np.isnan(rec.confidence)]
        assert c.size and (c >= 0).all() and (c <= 1).all()


def test_strided_mode_decodes_each_kept_step_from_its_window():
    torch.manual_seed(1)
    net = build_model("compact", hidden=2, encoder=2, decoder=2, skip=2).eval()
    video = np.random.default_rng(1).random((20, 8, 8)).astype(np.float32)
    out = infer(video, net, 3, stride=4, device="cpu", batch=2, confidence=False,
                progress="none").video
    x = torch.from_numpy(video)
    with torch.no_grad():
        for w in plan_windows(20, 3, stride=4):
            y = net(x[w.start:w.stop][None])[0].numpy()
            for k in w.keep:
                np.testing.assert_allclose(out[k], y[k - w.start], atol=1e-5)


def test_bench_reports_every_mode_and_exact_matches_reference():
    from dblink.bench import format_rows, run_bench

    rows = run_bench("compact", size=24, steps=12, window=3, strides=(1, 4), device="cpu",
                     batch=2, ref_frames=2)
    assert [r["mode"] for r in rows] == ["reference loop", "engine stride 1 (exact)", "engine stride 4"]
    assert rows[1]["max_abs_diff"] < 1e-5
    assert all(r["s_per_frame"] > 0 for r in rows)
    assert "speed-up" in format_rows(rows)


def test_bf16_autocast_stays_close_to_fp32_and_returns_float32():
    torch.manual_seed(2)
    net = torch.jit.script(build_model("compact", hidden=4, encoder=4, decoder=4, skip=2).eval())
    video = (np.random.default_rng(2).random((12, 16, 16)) < 0.1).astype(np.float32)
    ref = infer(video, net, 3, device="cpu", confidence=False, progress="none").video
    bf = infer(video, net, 3, device="cpu", confidence=False, progress="none", precision="bf16")
    assert bf.video.dtype == np.float32 and bf.batch == 4  # CPU default batch
    diff = np.abs(bf.video - ref).max()
    assert 0 < diff < 0.02  # bf16 differs, but only in the 3rd digit


def test_precision_and_batch_are_checked():
    from dblink.errors import DBlinkError

    net = build_model("compact", hidden=2, encoder=2, decoder=2, skip=2).eval()
    video = np.zeros((4, 8, 8), np.float32)
    with pytest.raises(DBlinkError, match="--precision"):
        infer(video, net, 1, device="cpu", progress="none", precision="fp8")
    with pytest.raises(DBlinkError, match="--batch"):
        infer(video, net, 1, device="cpu", progress="none", batch=0)


@pytest.mark.parametrize("tta", [4, 8])
def test_tta_averages_the_mirrored_and_transposed_reconstructions(tta):
    """``tta`` = the mean of plain reconstructions of the mirrored (and transposed) movie, each
    mapped back; on a non-square field of odd size, with a model that is not mirror-symmetric."""
    from dblink.engine import dihedral

    torch.manual_seed(5)
    net = torch.jit.script(build_model("compact", hidden=3, encoder=3, decoder=3, skip=2).eval())
    video = (np.random.default_rng(5).random((9, 11, 14)) < 0.1).astype(np.float32)
    got = infer(video, net, 2, stride=2, device="cpu", confidence=False, progress="none",
                tta=tta).video
    want = np.zeros_like(video)
    for transpose, flip in dihedral(tta):
        v = video.transpose(0, 2, 1) if transpose else video
        v = np.flip(v, [a + 3 for a in flip]) if flip else v
        y = infer(np.ascontiguousarray(v), net, 2, stride=2, device="cpu", confidence=False,
                  progress="none").video
        y = np.flip(y, [a + 3 for a in flip]) if flip else y
        want += y.transpose(0, 2, 1) if transpose else y
    want /= tta
    np.testing.assert_allclose(got, want, atol=1e-5)
    plain = infer(video, net, 2, stride=2, device="cpu", confidence=False, progress="none").video
    assert np.abs(got - plain).max() > 1e-3  # the copies do differ: the average is not a no-op
    assert dihedral(8)[:4] == dihedral(4) and len(set(dihedral(8))) == 8


def test_tta_is_checked():
    from dblink.errors import DBlinkError

    net = build_model("compact", hidden=2, encoder=2, decoder=2, skip=2).eval()
    with pytest.raises(DBlinkError, match="--tta must be one of 1, 4, 8"):
        infer(np.zeros((4, 8, 8), np.float32), net, 1, device="cpu", progress="none", tta=2)


def test_stream_stats_split_source_and_network_time():
    from dblink.engine import stream_infer

    net = build_model("compact", hidden=2, encoder=2, decoder=2, skip=2).eval()
    video = np.random.default_rng(3).random((10, 8, 8)).astype(np.float32)
    calls = []

    def source(a, b):
        calls.append((a, b))
        return video[a:b]

    stats: dict = {}
    out = list(stream_infer(source, video.shape, net, 2, device="cpu", progress="none",
                            stats=stats, chunk=4))
    assert [t for t, _, _ in out] == list(range(10)) and len(calls) >= 2
    assert stats["batch"] == 4 and stats["n_windows"] == 10
    assert 0 < stats["network_s"] <= stats["seconds"] and 0 < stats["source_s"] <= stats["seconds"]


def test_bench_precisions_and_no_reference():
    from dblink.bench import format_rows, run_bench

    rows = run_bench("compact", size=16, steps=8, window=2, strides=(1,), device="cpu",
                     ref_frames=3, precisions=("fp32", "bf16"), hidden=4, end_to_end=True)
    assert [r["mode"] for r in rows] == ["reference loop", "engine stride 1 (exact)",
                                         "engine stride 1 (exact) bf16",
                                         "CLI end to end stride 1 (exact)"]
    assert rows[1]["max_abs_diff"] < 1e-5 < rows[2]["max_abs_diff"] < 0.05
    # the command line, on the same data written as a table, computes what the reference does
    assert rows[3]["max_abs_diff"] < 1e-5 and rows[3]["peak_mb"] > 50
    rows = run_bench("compact", size=16, steps=8, window=2, strides=(2,), device="cpu",
                     ref_frames=0, hidden=4)
    assert [r["mode"] for r in rows] == ["engine stride 2"] and rows[0]["speedup"] is None
    assert "engine stride 2" in format_rows(rows)


def test_out_of_memory_halves_the_batch_instead_of_failing():
    from dblink.engine import _Runner
    from dblink.errors import DBlinkError

    class Greedy(torch.nn.Module):  # "runs out of memory" above 2 windows per call
        def forward(self, x, pos):
            if x.shape[0] > 2:
                raise RuntimeError("CUDA out of memory. Tried to allocate 21.40 GiB")
            return x.index_select(1, pos)

    run = _Runner(Greedy(), torch.device("cpu"), "fp32")
    run.split_on_oom = True  # as on CUDA
    x = torch.arange(7 * 3 * 2 * 2, dtype=torch.float32).reshape(7, 3, 2, 2)
    pos = torch.tensor([1])
    np.testing.assert_array_equal(run(x, pos), x[:, 1:2].numpy())
    assert run.max_batch == 1  # 7 -> 3 -> 1 (3 still failed), kept for later calls
    np.testing.assert_array_equal(run(x[:2], pos), x[:2, 1:2].numpy())

    class Hopeless(torch.nn.Module):
        def forward(self, x, pos):
            raise RuntimeError("CUDA out of memory.")

    run = _Runner(Hopeless(), torch.device("cpu"), "fp32")
    run.split_on_oom = True
    with pytest.raises(DBlinkError, match="--tile"):
        run(x, pos)
    with pytest.raises(RuntimeError, match="out of memory"):  # not on CPUs
        _Runner(Hopeless(), torch.device("cpu"), "fp32")(x, pos)


@pytest.mark.parametrize("W,K,N", [(6, 1, 3), (6, 2, 4), (5, 3, 2), (8, 4, 5)])
def test_sampled_confidence_is_the_interpolated_per_step_confidence(W, K, N):
    """Sampling the confidence every N steps: the samples get the per-step confidence, the steps
    between get 1 − sqrt of the time-interpolated mean squared deviation, the video is the same,
    and the head decodes 1 + 2/N steps per output step instead of 3 (issue #18)."""
    from dblink.windows import confidence_samples, plan_windows

    torch.manual_seed(3)
    net = torch.jit.script(build_model("compact", hidden=4, encoder=4, decoder=4, skip=2).eval())
    rng = np.random.default_rng(3)
    T = 29
    video = (rng.random((T, 12, 12)) < 0.08).astype(np.float32)
    kw = dict(window=W, stride=K, device="cpu", batch=2, confidence=True, progress="none")
    full = infer(video, net, confidence_every=1, chunk=5, **kw)
    part = infer(video, net, confidence_every=N, chunk=7, **kw)
    np.testing.assert_allclose(part.video, full.video, atol=1e-6)
    samples = list(confidence_samples(T, N))
    msd = (1 - full.confidence) ** 2  # outputs in [0, 1]: the confidence is never clipped at 0
    for t in range(T):
        before = [s for s in samples if s <= t]
        after = [s for s in samples if s >= t]
        if not before or not after:
            want = msd[(before or after)[-1 if before else 0]]
        else:
            s0, s1 = before[-1], after[0]
            w = 0.0 if s0 == s1 else (t - s0) / (s1 - s0)
            want = (1 - w) * msd[s0] + w * msd[s1]
        np.testing.assert_allclose(part.confidence[t], 1 - np.sqrt(want), atol=2e-5, err_msg=str(t))
    decoded = sum(len(w.keep) + len(w.alt) for w in plan_windows(T, W, K, True, N))
    assert T < decoded <= T + 2 * len(samples) < 3 * T
