"""Simulation (deterministic, realistic counts) and the paper's metrics."""
import numpy as np
import pytest
from scipy import ndimage

from dblink.metrics import baseline, binarize_paper, evaluate_video, scores
from dblink.simulate import SimConfig, SimRanges, simulate_movie


def test_simulation_is_deterministic_and_consistent():
    cfg = SimConfig(height_px=32, width_px=48, n_steps=20, density=0.5)
    a, b = simulate_movie(cfg, 3), simulate_movie(cfg, 3)
    np.testing.assert_array_equal(a.locs.x, b.locs.x)
    np.testing.assert_array_equal(a.gt, b.gt)
    assert not np.array_equal(simulate_movie(cfg, 4).locs.x, a.locs.x)
    assert a.gt.shape == (20, 32, 48) and set(np.unique(a.gt)) <= {0.0, 1.0}
    assert a.locs.frame.min() >= 1 and a.locs.frame.max() <= cfg.n_frames
    assert (a.locs.x >= 0).all() and (a.locs.x < 48 * 40).all()
    # density: localizations per µm² per raw frame, within Poisson/blinking noise
    area = 32 * 48 * 0.04 ** 2
    measured = len(a.locs) / (area * cfg.n_frames)
    assert 0.25 < measured < 1.0
    # most localizations lie on (or within 2 px of) the ground-truth structure
    X = a.render()
    near = ndimage.binary_dilation(a.gt > 0, np.ones((1, 5, 5), bool))
    assert (X * near).sum() / X.sum() > 0.8


def test_ranges_draw_within_bounds():
    rng = np.random.default_rng(0)
    r = SimRanges()
    for _ in range(20):
        c = r.draw(rng, SimConfig())
        assert r.density[0] <= c.density <= r.density[1]
        assert r.n_structures[0] <= c.n_structures <= r.n_structures[1]


def test_paper_binarization_and_scores():
    gt = np.zeros((2, 10, 10))
    gt[:, 5, :] = 1
    assert scores(binarize_paper(gt), gt)["f1"] == 1.0
    shifted = np.roll(gt, 1, axis=1)  # one pixel off: perfect within tolerance, zero fidelity
    s = scores(binarize_paper(shifted), gt)
    assert s["f1"] == 1.0 and s["fidelity"] == 0.0
    assert s["hallucination"] == pytest.approx(10 / 90)
    noisy = gt * 0.3 + 0.5 * (np.random.default_rng(0).random(gt.shape) > 0.9)
    assert evaluate_video(noisy, gt)["f1"] < 1.0
    frame = np.array([[[0, 100, 101 / 255 * 255, 255]]], dtype=float)
    assert binarize_paper(frame).tolist() == [[[False, False, True, True]]]


def test_baseline_sums_the_window():
    v = np.zeros((5, 9, 9), np.float32)
    v[0, 4, 4] = 1
    b = baseline(v, window=1, sigma_px=0.0)
    assert b[0, 4, 4] == 1 and b[1, 4, 4] == 1 and b[2, 4, 4] == 0


def test_best_level_f1_is_at_least_the_paper_level():
    rng = np.random.default_rng(2)
    gt = np.zeros((3, 16, 16))
    gt[:, 8, :] = 1
    pred = gt * 0.3 + rng.random(gt.shape) * 0.2
    pred[:, 2, 2] = 5.0  # one bright cluster: the paper's level misses the structure
    paper = evaluate_video(pred, gt, best_level=True)
    assert paper["f1_best"] >= paper["f1"] and paper["f1_best"] > 0.9
