"""Mitochondria-like structures: filled tubules and blobs that drift, wobble, elongate, split and fuse.

Each object is a capsule (a tubule with rounded ends; a blob when its length is ~0) of width
150–350 nm and length up to 2 µm. Over the movie its centre wanders, its axis turns, its length
breathes, and about half of the objects split into two halves and fuse again (the gap between the
halves goes positive, then back below zero). Labelling sites fill the capsule (matrix label).
"""
from __future__ import annotations

import numpy as np

SITE_AREA_NM2 = 150.0  # one labelling site per this many nm² of object


class Mitochondria:
    """Time-varying capsules; sites are stored in normalized object coordinates."""

    def __init__(self, obj: np.ndarray, s: np.ndarray, d: np.ndarray, centre: np.ndarray,
                 angle: np.ndarray, length: np.ndarray, gap: np.ndarray, width: np.ndarray) -> None:
        self.obj, self.s, self.d = obj, s, d            # per site
        self.centre, self.angle = centre, angle          # (n_obj, n_frames, 2), (n_obj, n_frames)
        self.length, self.gap = length, gap              # (n_obj, n_frames) nm
        self.width = width                               # (n_obj,) nm

    @property
    def n_sites(self) -> int:
        return len(self.obj)

    @classmethod
    def random(cls, rng: np.random.Generator, field_nm: tuple[float, float], n: int,
               n_frames: int) -> "Mitochondria":
        """``n`` objects in a field of ``field_nm`` (width, height) centred on (0, 0)."""
        w, h = field_nm
        t = np.linspace(0.0, 1.0, n_frames)
        objs, ss, dd = [], [], []
        centre = np.zeros((n, n_frames, 2))
        angle = np.zeros((n, n_frames))
        length = np.zeros((n, n_frames))
        gap = np.full((n, n_frames), -1.0)
        width = rng.uniform(150.0, 350.0, n)
        for i in range(n):
            L0 = rng.uniform(0.0, 2000.0) if rng.random() > 0.25 else rng.uniform(0.0, 150.0)
            c0 = rng.uniform([-0.4 * w, -0.4 * h], [0.4 * w, 0.4 * h])
            wander = rng.uniform(0, 300.0)
            ph = rng.uniform(0, 2 * np.pi, 4)
            f = rng.uniform(0.3, 1.5, 4)
            centre[i] = c0 + wander * np.column_stack([np.sin(2 * np.pi * f[0] * t + ph[0]),
                                                       np.sin(2 * np.pi * f[1] * t + ph[1])])
            angle[i] = rng.uniform(0, np.pi) + np.deg2rad(rng.uniform(0, 25)) * np.sin(
                2 * np.pi * f[2] * t + ph[2])
            length[i] = L0 * (1.0 + rng.uniform(0, 0.4) * np.sin(2 * np.pi * f[3] * t + ph[3]))
            if rng.random() < 0.5 and L0 > 400:  # fission and fusion: the halves part and rejoin
                gap[i] = rng.uniform(150.0, 450.0) * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t
                                                           + rng.uniform(0, 2 * np.pi))
            # sites uniformly inside the base capsule, in normalized coordinates
            half_len = L0 / 2 + width[i] / 2
            area = L0 * width[i] + np.pi * width[i] ** 2 / 4
            m = int(area / SITE_AREA_NM2 * 1.3) + 10
            a = rng.uniform(-half_len, half_len, m)
            b = rng.uniform(-width[i] / 2, width[i] / 2, m)
            inside = (np.abs(a) <= L0 / 2) | ((np.abs(a) - L0 / 2) ** 2 + b ** 2 <= (width[i] / 2) ** 2)
            a, b = a[inside], b[inside]
            objs.append(np.full(a.size, i))
            ss.append(a / half_len)
            dd.append(b / (width[i] / 2))
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
        return cls(cat(objs, np.int64), cat(ss, float), cat(dd, float), centre, angle, length,
                   gap, width)

    def sites_at(self, idx: np.ndarray, frames: np.ndarray | int) -> np.ndarray:
        """Positions (N, 2) in nm of sites ``idx`` at 0-based raw ``frames``."""
        o = self.obj[idx]
        f = np.broadcast_to(frames, o.shape)
        s, d, wdt = self.s[idx], self.d[idx], self.width[o]
        along = s * (self.length[o, f] / 2 + wdt / 2) + np.sign(s) * self.gap[o, f] / 2
        across = d * wdt / 2
        a = self.angle[o, f]
        c, sn = np.cos(a), np.sin(a)
        out = self.centre[o, f].copy()
        out[:, 0] += c * along - sn * across
        out[:, 1] += sn * along + c * across
        return out

