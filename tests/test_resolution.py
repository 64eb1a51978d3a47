"""Resolution measures against synthetic data of known resolution, and the `dblink resolution` command."""
import math

import numpy as np
import pytest
from scipy import ndimage

from dblink.cli import main
from dblink.errors import DBlinkError
from dblink.hyperstack import write_hyperstack
from dblink.tables import Localizations, write_localizations
from dblink.resolution import (decorrelation, frc_curve, frc_localizations, plot_decorrelation,
                               plot_frc, split_halves, temporal_consistency)


def _points(rng, N, M):
    img = np.zeros((N, N))
    idx = rng.integers(0, N, size=(M, 2))
    np.add.at(img, (idx[:, 0], idx[:, 1]), 1.0)
    return img


def _filter(img, transfer):
    N = img.shape[0]
    f = np.hypot(np.fft.fftfreq(N)[:, None], np.fft.fftfreq(N)[None, :])  # cycles per pixel
    return np.fft.ifft2(np.fft.fft2(img) * transfer(f)).real


@pytest.mark.parametrize("sigma,noise", [(2.0, 0.009), (3.0, 0.003)])
def test_frc_of_two_noise_realizations_matches_theory(sigma, noise):
    """M unit point emitters at random pixels of an N x N image, blurred with a Gaussian PSF of
    s.d. ``sigma`` px (transfer G(q) = exp(-2 pi^2 sigma^2 q^2), q in cycles/px), plus two
    independent realizations of white noise of s.d. ``noise``.

    For random positions the expected signal power per frequency is M G(q)^2 and the (unnormalized
    DFT) noise power is N^2 noise^2, so SNR(q) = M G^2 / (N^2 noise^2) and the expected
    FRC(q) = SNR / (1 + SNR). FRC = 1/7 where SNR = 1/6, i.e. at
    q_c = sqrt(ln(6 M / (N^2 noise^2))) / (2 pi sigma); the resolution is 1 / q_c (pixels x pixel size).
    """
    rng = np.random.default_rng(1)
    N, M, px = 512, 2000, 10.0
    signal = _filter(_points(rng, N, M), lambda f: np.exp(-2 * np.pi ** 2 * sigma ** 2 * f ** 2))
    a = signal + rng.normal(0, noise, signal.shape)
    b = signal + rng.normal(0, noise, signal.shape)
    expected = px * 2 * math.pi * sigma / math.sqrt(math.log(6 * M / (N ** 2 * noise ** 2)))
    res = frc_curve(a, b, px)
    assert res.resolution_nm == pytest.approx(expected, rel=0.10)
    # the same noise realization twice correlates perfectly: no crossing, a clear note
    same = frc_curve(a, a, px)
    assert same.resolution_nm is None and "Nyquist" in same.note


def _emitter_table(rng, M, lam, sigma, L=4000.0, n_frames=2000):
    n = rng.poisson(2 * lam, M)
    ex, ey = rng.uniform(0, L, M), rng.uniform(0, L, M)
    x = np.repeat(ex, n) + rng.normal(0, sigma, n.sum())
    y = np.repeat(ey, n) + rng.normal(0, sigma, n.sum())
    frame = rng.integers(1, n_frames + 1, n.sum()).astype(np.int64)
    return Localizations(frame=frame, x=x, y=y, source="sim")


@pytest.mark.parametrize("lam,sigma", [(5.0, 20.0), (5.0, 35.0)])
def test_frc_of_localizations_matches_theory(lam, sigma):
    """M static emitters at uniform random positions in a 4 x 4 µm field, each localized a Poisson
    number of times (mean 2 lam) in random raw frames with Gaussian precision ``sigma`` nm. The
    alternating 100-frame blocks give each half an independent Poisson(lam) number of localizations
    per emitter. With G(q) = exp(-2 pi^2 sigma^2 q^2): E[F_A F_B*] = M lam^2 G^2 and
    E|F_A|^2 = M (lam + lam^2 G^2), so FRC(q) = lam G^2 / (1 + lam G^2), which is 1/7 where
    lam G^2 = 1/6: resolution 1 / q_c = 2 pi sigma / sqrt(ln(6 lam)). (5 nm render pixels
    attenuate both halves alike and do not move the crossing.)
    """
    rng = np.random.default_rng(3)
    locs = _emitter_table(rng, 8000, lam, sigma)
    res = frc_localizations(locs, pixel_size=5.0, block_frames=100)
    expected = 2 * math.pi * sigma / math.sqrt(math.log(6 * lam))
    assert res.resolution_nm == pytest.approx(expected, rel=0.10)
    assert sum(res.info["localizations"]) == len(locs)


def test_split_by_alternating_frame_blocks():
    f = np.arange(1, 41, dtype=np.int64)
    locs = Localizations(frame=f, x=f * 1.0, y=f * 1.0)
    a, b = split_halves(locs, 5)
    assert list(a.frame[:7]) == [1, 2, 3, 4, 5, 11, 12] and list(b.frame[:6]) == [6, 7, 8, 9, 10, 16]
    assert len(a) + len(b) == 40
    with pytest.raises(DBlinkError, match="two"):
        frc_localizations(locs, block_frames=40)


def _bandlimited(rng, N, k0, ratio):
    """Point emitters low-passed with an ideal circular filter at ``k0`` (normalized frequency,
    1 = Nyquist = 0.5 cycles/px), plus white noise whose spectral magnitude is ``ratio`` times lower."""
    M = 2000
    s = _filter(_points(rng, N, M), lambda f: (2 * f <= k0).astype(float))
    return s + rng.normal(0, math.sqrt(M) / (ratio * N), s.shape)


@pytest.mark.parametrize("k0", [0.3, 0.6])
def test_decorrelation_finds_a_sharp_cutoff(k0):
    """An image whose spectrum is flat up to a sharp cutoff k0 and noise (20x lower in magnitude)
    beyond: d(r) = sum_{|k|<=r} |I| / sqrt(E N(r)) grows as sqrt(N(r)) while r <= k0 and falls
    beyond it, since the ring magnitude drops below half the disc mean; so k_c = k0 and the
    resolution is 2 * pixel / k0. Reading k_c from the wrong place (e.g. in cycles/px instead of
    Nyquist units) or a wrong peak would miss it by far more than 10 %."""
    rng = np.random.default_rng(1)
    px = 10.0
    res = decorrelation(_bandlimited(rng, 256, k0, 20.0), px)
    assert res.resolution_nm == pytest.approx(2 * px / k0, rel=0.10)


def test_decorrelation_high_pass_filters_see_past_a_bright_background():
    """The same band-limited detail (k0 = 0.45) under a smooth blob much brighter than it: the
    unfiltered curve peaks at a very low frequency, the high-pass filtered curves still find k0."""
    rng = np.random.default_rng(2)
    N, px, k0 = 256, 10.0, 0.45
    yy, xx = np.mgrid[:N, :N]
    detail = _bandlimited(rng, N, k0, 20.0)
    img = detail + 30 * detail.std() * np.exp(-((xx - 100) ** 2 + (yy - 150) ** 2) / (2 * 30 ** 2))
    res = decorrelation(img, px)
    assert res.peaks[0][0] < 0.1  # unfiltered: fooled by the background
    assert res.resolution_nm == pytest.approx(2 * px / k0, rel=0.10)


def test_decorrelation_refuses_bad_images(tmp_path):
    with pytest.raises(DBlinkError, match="constant"):
        decorrelation(np.ones((64, 64)), 10.0)
    with pytest.raises(DBlinkError, match="2-D"):
        decorrelation(np.ones((4, 4)), 10.0)
    res = decorrelation(np.random.default_rng(0).normal(size=(64, 64)), 10.0)  # white noise: no peak
    assert res.resolution_nm is None


def _pattern(rng, N=96):
    p = ndimage.gaussian_filter(rng.normal(size=(N, N)), 2.0)
    return p / p.std()


def test_temporal_consistency_static_noisy_video():
    """Frames = S + independent noise n_t (var(S) = 1, var(n) = s^2): the expected normalized
    cross-correlation of two frames is 1 / (1 + s^2)."""
    rng = np.random.default_rng(0)
    s = 0.5
    base = _pattern(rng)
    video = np.stack([base + rng.normal(0, s, base.shape) for _ in range(10)])
    assert temporal_consistency(video) == pytest.approx(1 / (1 + s ** 2), abs=0.02)


def test_temporal_consistency_undoes_known_motion():
    rng = np.random.default_rng(0)
    base = _pattern(rng)
    shifts = np.cumsum(rng.uniform(-1.5, 1.5, (8, 2)), axis=0)
    shifts -= shifts[0]
    video = np.stack([np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(base), s)).real for s in shifts])
    moving = temporal_consistency(video)
    assert temporal_consistency(video, shifts) > 0.995 > moving + 0.1
    with pytest.raises(DBlinkError, match="shifts"):
        temporal_consistency(video, shifts[:3])


def test_plots_are_pngs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    img = _bandlimited(rng, 128, 0.5, 20.0)
    frc = frc_curve(img, img + rng.normal(0, img.std(), img.shape), 10.0)
    for p in (plot_frc(frc, tmp_path / "f.png"), plot_decorrelation(decorrelation(img, 10.0), tmp_path / "d.png")):
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 300


def test_cli_resolution_frc_and_image(tmp_path, capsys):
    rng = np.random.default_rng(4)
    csv = tmp_path / "locs.csv"
    write_localizations(csv, _emitter_table(rng, 3000, 5.0, 20.0))
    assert main(["resolution", str(csv), "--pixel-size", "5", "-o", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    nm = float(out.split("FRC resolution:")[1].split("nm")[0])
    assert nm == pytest.approx(2 * math.pi * 20 / math.sqrt(math.log(30)), rel=0.10)
    assert (tmp_path / "r_frc.png").is_file()

    img = _bandlimited(rng, 128, 0.5, 20.0).astype(np.float32)
    tif = tmp_path / "rec.tif"
    write_hyperstack(tif, [np.stack([img, img, img])], ["reconstruction"], pixel_size_nm=20.0, frames_per_step=10)
    assert main(["resolution", "--image", str(tif), "--frame", "2"]) == 0
    out = capsys.readouterr().out
    assert float(out.split("decorrelation resolution:")[1].split("nm")[0]) == pytest.approx(80.0, rel=0.10)
    assert (tmp_path / "rec_decorrelation.png").is_file()


@pytest.mark.parametrize("args,match", [
    ([], "either"),
    (["{csv}", "--image", "{tif}"], "either"),
    (["{tmp}/missing.csv"], "no such file"),
    (["--image", "{csv}"], "not a readable TIFF"),
    (["--image", "{tif}", "--frame", "9"], "between 1 and 3"),
    (["--image", "{tif}", "--roi", "0,0,1,1"], "applies to a localization table"),
    (["{csv}", "--frames", "9-2"], "FIRST-LAST"),
    (["{csv}", "--frame", "2"], "--image only"),
    (["{csv}", "--pixel-size", "-1"], "positive"),
    (["{csv}", "--pixel-size", "0.01"], "limit"),
])
def test_cli_resolution_errors(tmp_path, capsys, args, match):
    csv = tmp_path / "locs.csv"
    write_localizations(csv, _emitter_table(np.random.default_rng(0), 50, 2.0, 20.0, n_frames=100))
    tif = tmp_path / "rec.tif"
    write_hyperstack(tif, [np.ones((3, 32, 32), np.float32)], ["reconstruction"], pixel_size_nm=20.0,
                     frames_per_step=10)
    argv = ["resolution"] + [a.format(csv=csv, tif=tif, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_a_tiff_the_reader_chokes_on_without_a_message_is_one_line(tmp_path, monkeypatch):
    """A damaged TIFF can make tifffile fail on a bare ``assert`` (an exception without a message):
    still one line, naming the exception (a fuzzed TIFF did this; it was an IndexError)."""
    import dblink.hyperstack as H
    from dblink.errors import first_line
    from dblink.resolution import open_hyperstack

    def bare(path):
        raise AssertionError()

    monkeypatch.setattr(H, "read_hyperstack", bare)
    with pytest.raises(DBlinkError, match=r"x.tif: not a readable TIFF hyperstack \(AssertionError\)"):
        open_hyperstack(tmp_path / "x.tif")
    assert first_line(ValueError("a\nb")) == "a" and first_line(KeyError()) == "KeyError"
