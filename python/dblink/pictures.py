"""Pictures for people: side-by-side panels (PNG) and animations (GIF) of videos (T, H, W)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


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
    img.save(path)
    return Path(path)


def animation(videos: list[np.ndarray], path: str | Path, scale: int = 2, fps: float = 10.0) -> Path:
    """An animated GIF of videos shown side by side, one GIF frame per step."""
    T = min(v.shape[0] for v in videos)
    frames = [Image.fromarray(_row([v[t] for v in videos], scale)) for t in range(T)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return Path(path)
