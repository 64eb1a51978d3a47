"""Pictures for people: side-by-side panels (PNG) and animations (GIF) of videos (T, H, W)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from .errors import DBlinkError, first_line
from .files import input_file, path_errors as _path_errors

#: a TIFF with more pixels than this (all time points and channels) is refused by ``preview``
MAX_PREVIEW_PIXELS = 2**27


def _save(img: Image.Image, path: str | Path, fmt: str, **kw) -> Path:
    """Save a picture atomically (complete or absent); a folder that cannot be written is one line."""
    from .files import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        try:
            img.save(tmp, format=fmt, **kw)
        except OSError as exc:
            raise DBlinkError(f"{path}: cannot write the picture ({exc.strerror or exc}); "
                              f"nothing was written") from None
    return path


def _to_uint8(frame: np.ndarray, hi: float | None = None) -> np.ndarray:
    f = np.nan_to_num(np.asarray(frame, dtype=np.float64))
    top = hi if hi is not None else (np.percentile(f, 99.7) if f.max() > 0 else 1.0)
    return (np.clip(f / max(top, 1e-12), 0, 1) * 255).astype(np.uint8)


def _row(frames: list[np.ndarray], scale: int, gap: int = 4) -> np.ndarray:
    tiles = [np.kron(_to_uint8(f), np.ones((scale, scale), np.uint8)) for f in frames]
    h = tiles[0].shape[0]
    sep = np.full((h, gap), 255, np.uint8)
    out = []
    for i, t in enumerate(tiles):
        out += [t] if i == 0 else [sep, t]
    return np.concatenate(out, axis=1)


def panel(videos: list[np.ndarray], titles: list[str], path: str | Path, times: list[int] | None = None,
          scale: int = 3) -> Path:
    """A PNG grid: one column per video, one row per time point, titles on top."""
    T = videos[0].shape[0]
    times = times or sorted({0, T // 2, T - 1})
    rows = [_row([v[t] for v in videos], scale) for t in times]
    gap = np.full((4, rows[0].shape[1]), 255, np.uint8)
    body = np.concatenate([x for r in rows for x in (r, gap)][:-1], axis=0)
    head = 16
    img = Image.new("L", (body.shape[1], body.shape[0] + head), 255)
    img.paste(Image.fromarray(body), (0, head))
    draw = ImageDraw.Draw(img)
    tile_w = videos[0].shape[2] * scale + 4
    for i, t in enumerate(titles):
        draw.text((i * tile_w + 3, 2), t, fill=0)
    return _save(img, path, "PNG")


def animation(videos: list[np.ndarray], path: str | Path, scale: int = 2, fps: float = 10.0) -> Path:
    """An animated GIF of videos shown side by side, one GIF frame per step."""
    T = min(v.shape[0] for v in videos)
    frames = [Image.fromarray(_row([v[t] for v in videos], scale)) for t in range(T)]
    return _save(frames[0], path, "GIF", save_all=True, append_images=frames[1:],
                 duration=int(1000 / fps), loop=0)


def time_colors(n: int) -> np.ndarray:
    """n RGB colours (0–1) running from red through yellow, green and cyan to blue over time."""
    import colorsys

    return np.array([colorsys.hsv_to_rgb(0.7 * i / max(n - 1, 1), 1.0, 1.0) for i in range(n)])


def temporal_color_code(video: np.ndarray) -> np.ndarray:
    """Like Fiji's Temporal-Color Code: each frame tinted by its time, maximum projection (H, W, 3) uint8."""
    v = np.nan_to_num(np.asarray(video, dtype=np.float32))
    top = np.percentile(v, 99.9) if v.max() > 0 else 1.0
    v = np.clip(v / max(top, 1e-12), 0, 1)
    colors = time_colors(v.shape[0]).astype(np.float32)
    rgb = np.zeros(v.shape[1:] + (3,), np.float32)
    for t in range(v.shape[0]):
        np.maximum(rgb, v[t, :, :, None] * colors[t], out=rgb)
    return (rgb * 255).astype(np.uint8)


@_path_errors
def read_video(path: str | Path, what: str = "preview") -> np.ndarray:
    """A TIFF video as float32 (T, C, Y, X), checked before its pixels are read: one DBlinkError
    line for a missing, empty, non-TIFF, 2-D, 5-D, RGB, too large or pixel-less file."""
    import tifffile

    p = input_file(path, "image")
    if p.stat().st_size == 0:
        raise DBlinkError(f"{p}: empty file (expected a TIFF hyperstack written by dblink reconstruct)")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        raise DBlinkError(f"{p}: not a TIFF file (expected a hyperstack written by dblink reconstruct)")
    try:
        with tifffile.TiffFile(p) as tif:
            if not tif.series:
                raise DBlinkError(f"{p}: the TIFF holds no images")
            series = tif.series[0]
            shape, axes, dtype = tuple(series.shape), series.axes, np.dtype(series.dtype)
            if 0 in shape or not shape:
                raise DBlinkError(f"{p}: the TIFF holds no pixels (shape {shape})")
            if len(shape) < 3:
                raise DBlinkError(f"{p}: a single 2-D image ({' x '.join(map(str, shape))}); {what} "
                                  f"needs a video (time points x [channels x] height x width)")
            if len(shape) > 4 or "S" in axes:
                raise DBlinkError(f"{p}: an image of {len(shape)} dimensions (axes {axes}, shape "
                                  f"{shape}); {what} needs time points x [channels x] height x width")
            if dtype.kind not in "uif":
                raise DBlinkError(f"{p}: pixels of type {dtype}; {what} needs numbers")
            if int(np.prod(shape, dtype=np.float64)) > MAX_PREVIEW_PIXELS:
                raise DBlinkError(f"{p}: {' x '.join(map(str, shape))} pixels is too large for a "
                                  f"{what} (limit {MAX_PREVIEW_PIXELS:,} pixels)")
            data = series.asarray()
    except DBlinkError:
        raise
    except MemoryError:
        raise DBlinkError(f"{p}: not enough memory to read the TIFF") from None
    except Exception as exc:  # noqa: BLE001 - anything tifffile cannot read is a user error here
        first = first_line(exc)
        raise DBlinkError(f"{p}: not a readable TIFF ({first})") from None
    if data.shape != shape:
        raise DBlinkError(f"{p}: the TIFF's pixels do not match its shape {shape}")
    video = data.astype(np.float32, copy=False)
    if video.ndim == 3:  # ImageJ drops an axis of size 1: channels of one time point, or a stack
        video = video[None] if axes[0] == "C" else video[:, None]
    return video


#: below this confidence a reconstruction should not be trusted without the summed localizations:
#: there the paper's hallucination was 2.4–19× what it is above on held-out movies of all 12
#: simulator domain sets, 5 movies each (shipped models; README, "Confidence channel";
#: ``tools/confidence_check.py``, docs/bench/confidence-check-n5.txt)
CONFIDENCE_TRUST = 0.9


@_path_errors
def preview(path: str | Path, out_prefix: str | Path | None = None, scale: int = 2,
            say: Callable[[str], None] | None = None) -> list[Path]:
    """Write ``<prefix>_timecolor.png`` (time-colour-coded projection with a time bar) and
    ``<prefix>.gif`` (the reconstruction over time, beside its confidence) for a hyperstack TIFF;
    with a confidence channel also ``<prefix>_confidence.png`` (:func:`confidence_map`), whose
    low-confidence share of the structure goes to ``say`` (a one-line message) where given.

    ``out_prefix`` an existing folder: the pictures go into it, named after the TIFF. The TIFF and
    the output folder are checked before any work (one DBlinkError line, see :func:`read_video`)."""
    from .files import check_output_folder

    prefix = Path(out_prefix) if out_prefix else Path(path).with_suffix("")
    if out_prefix and prefix.is_dir():
        prefix = prefix / Path(path).with_suffix("").name
    if not prefix.name or prefix.name in (".", ".."):
        raise DBlinkError(f"{out_prefix}: the output prefix needs a file name part")
    check_output_folder(prefix.parent)
    stack = read_video(path)
    video = stack[:, 0]
    rgb = np.kron(temporal_color_code(video), np.ones((scale, scale, 1), np.uint8))
    bar = (time_colors(rgb.shape[1])[None, :, :] * 255).astype(np.uint8).repeat(8, axis=0)
    img = Image.fromarray(np.concatenate([rgb, np.full((4, rgb.shape[1], 3), 255, np.uint8), bar]))
    draw = ImageDraw.Draw(img)
    draw.text((2, 2), f"t = 1 ... {video.shape[0]} (red -> blue)", fill=(255, 255, 255))
    png = _save(img, prefix.parent / f"{prefix.name}_timecolor.png", "PNG")
    if stack.shape[1] < 2:  # no confidence channel (reconstructed with --no-confidence)
        return [png, animation([video], prefix.parent / f"{prefix.name}.gif", scale=scale)]
    conf = np.nan_to_num(stack[:, 1], nan=1.0)
    gif = animation([video, conf], prefix.parent / f"{prefix.name}.gif", scale=scale)
    cmap = prefix.parent / f"{prefix.name}_confidence.png"
    share = confidence_map(video, conf, cmap, scale)
    if say is not None:
        say(f"confidence: {100 * share:.1f} % of the structure lies below {CONFIDENCE_TRUST:g} "
            f"(red in {cmap.name}), where hallucination was 2.4-19x higher on simulated movies; "
            f"check those parts against the summed localizations")
    return [png, gif, cmap]


def confidence_map(video: np.ndarray, confidence: np.ndarray, path: str | Path, scale: int = 2,
                   trust: float = CONFIDENCE_TRUST) -> float:
    """Write ``path``: the reconstruction's maximum over time in grey, its structure red where its
    confidence fell below ``trust`` at some time point (the areas not to trust without checking the
    summed localizations), with the low-confidence share of the structure written on it. Returns
    that share: of the pixels over time that the paper's binarization calls structure, those whose
    confidence is below ``trust``."""
    from .metrics import binarize_paper

    structure = binarize_paper(video)
    low_t = structure & (confidence < trust)
    share = float(low_t.sum() / max(1, structure.sum()))
    low = low_t.mean(axis=0)  # share of the time points
    peak = video.max(axis=0)
    grey = peak / peak.max() if peak.max() > 0 else peak
    rgb = np.repeat((grey * 255)[..., None], 3, axis=2)
    red = np.clip(low * 4, 0, 1)  # a quarter of the time points low: fully red
    rgb[..., 0] = np.maximum(rgb[..., 0], red * 255)
    rgb[..., 1:] *= (1 - red)[..., None]
    img = Image.fromarray(np.kron(rgb.astype(np.uint8), np.ones((scale, scale, 1), np.uint8)))
    ImageDraw.Draw(img).text((2, 2), f"red: confidence < {trust:g} ({100 * share:.0f} % of structure)",
                             fill=(255, 255, 0))
    _save(img, Path(path), "PNG")
    return share


def line_plot(path: str | Path, series: list, hlines: list | None = None, vlines: list | None = None,
              points: list | None = None, xlabel: str = "", ylabel: str = "", title: str = "",
              xlim: tuple | None = None, ylim: tuple | None = None, size: tuple = (640, 420)) -> Path:
    """A simple line plot as PNG (Pillow only).

    Args:
        series: (x, y, rgb) curves.
        hlines: (y, label) dashed horizontal lines (e.g. a threshold); vlines: x positions (dotted).
        points: (x, y) markers.
        xlim, ylim: axis ranges (default: the data's).
    """
    W, H = size
    left, right, top, bottom = 60, 20, 30, 45
    xs = np.concatenate([np.asarray(s[0], float) for s in series])
    ys = np.concatenate([np.asarray(s[1], float) for s in series])
    x0, x1 = xlim or (float(np.nanmin(xs)), float(np.nanmax(xs)))
    y0, y1 = ylim or (float(np.nanmin(ys)), float(np.nanmax(ys)))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (W - left - right),
                H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom))

    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rectangle([left, top, W - right, H - bottom], outline=(0, 0, 0))
    for i in range(6):  # ticks and tick labels
        xv, yv = x0 + i * (x1 - x0) / 5, y0 + i * (y1 - y0) / 5
        (tx, _), (_, ty) = px(xv, y0), px(x0, yv)
        d.line([tx, H - bottom, tx, H - bottom + 4], fill=(0, 0, 0))
        d.text((tx - 12, H - bottom + 6), f"{xv:.3g}", fill=(0, 0, 0))
        d.line([left - 4, ty, left, ty], fill=(0, 0, 0))
        d.text((4, ty - 6), f"{yv:.3g}", fill=(0, 0, 0))
    d.text((left + (W - left - right) // 2 - 3 * len(xlabel), H - 16), xlabel, fill=(0, 0, 0))
    d.text((4, 4), ylabel, fill=(0, 0, 0))
    d.text((left + 40, 8), title, fill=(0, 0, 0))
    for y, label in hlines or []:
        (_, ty) = px(x0, y)
        for xa in range(left, W - right, 8):
            d.line([xa, ty, min(xa + 4, W - right), ty], fill=(200, 0, 0))
        d.text((W - right - 30, ty - 13), label, fill=(200, 0, 0))
    for x in vlines or []:
        (tx, _) = px(x, y0)
        for ya in range(top, H - bottom, 6):
            d.point([(tx, ya), (tx, ya + 1)], fill=(0, 0, 200))
    for x, y, rgb in series:
        pts = [px(a, b) for a, b in zip(np.asarray(x, float), np.asarray(y, float)) if np.isfinite(b)]
        pts = [(a, min(max(b, top), H - bottom)) for a, b in pts if left <= a <= W - right]
        if len(pts) > 1:
            d.line(pts, fill=tuple(rgb), width=2 if rgb == (0, 0, 0) else 1)
    for x, y in points or []:
        a, b = px(x, y)
        d.ellipse([a - 3, b - 3, a + 3, b + 3], outline=(0, 0, 0))
    return _save(img, path, "PNG")


def comparison(out_dir: str | Path, locs: np.ndarray, summed: np.ndarray, recon: np.ndarray,
               truth: np.ndarray, confidence: np.ndarray | None, window: int,
               prefix: str = "") -> tuple[Path, Path]:
    """The standard pictures of a reconstruction against ground truth, all videos (T, H, W):
    ``<prefix>panel.png`` (one step of localizations | sum ±W steps | dblink | ground truth
    [| confidence]) and ``<prefix>movie.gif`` (sum | dblink | ground truth)."""
    out_dir = Path(out_dir)
    videos = [locs, summed, recon, truth]
    titles = ["1 step of locs", f"sum ±{window} steps", "dblink", "ground truth"]
    if confidence is not None:
        videos.append(confidence)
        titles.append("confidence")
    png = panel(videos, titles, out_dir / f"{prefix}panel.png")
    gif = animation([summed, recon, truth], out_dir / f"{prefix}movie.gif")
    return png, gif
