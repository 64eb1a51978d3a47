"""A bioimage.io model package (RDF format 0.5) for a dblink model file.

The package holds the TorchScript file as it is (its forward takes ``x`` of shape (B, T, H, W), the
localization counts per render pixel and step, and returns (B, T, H, W) when ``positions`` is None),
``rdf.yaml`` describing the axes batch / time / y / x with their units (nm, raw-frame steps), a test
input and output (``.npy``, computed by running the model on a small simulated movie), a cover image,
the model card as documentation, citations and the MIT licence.

Needs the optional extra ``bioimageio`` (``pip install 'dblink[bioimageio]'``).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import DBlinkError, first_line
from .export import LoadedModel, load_model

#: the DBlink paper
PAPER_DOI = "10.1038/s41592-023-01966-0"
PAPER_TEXT = ("Saguy A., Alalouf O., Opatovski N., Jang S., Heilemann M., Shechtman Y. DBlink: dynamic "
              "localization microscopy in super spatiotemporal resolution via deep learning. "
              "Nature Methods 20, 1939-1948 (2023).")
#: size of the test tensors: (batch, time, y, x)
TEST_SHAPE = (1, 16, 64, 64)


def _test_input(model: LoadedModel, shape: tuple[int, int, int, int] = TEST_SHAPE) -> np.ndarray:
    """Localization counts (float32, B x T x H x W) of a small simulated filament movie rendered at
    the model's pixel size and frames per step (deterministic)."""
    from .simulate import SimConfig, simulate_movie

    _, T, H, W = shape
    # the model's own pixel size and frames per step, within what a small simulation can afford
    # (the schema allows up to 1e5 nm and 1e6 frames; a test tensor needs neither)
    cfg = SimConfig(height_px=H, width_px=W, pixel_size=min(model.pixel_size, 200.0),
                    frames_per_step=min(model.frames_per_step, 50), n_steps=T)
    video = simulate_movie(cfg, 20260101).render()
    return video[None].astype(np.float32)


def _cover(x: np.ndarray, y: np.ndarray, path: Path) -> Path:
    """A 2:1 cover: the summed localizations and the reconstruction of the middle step."""
    from PIL import Image

    from .pictures import _to_uint8

    left = _to_uint8(x[0].sum(axis=0))
    right = _to_uint8(y[0, y.shape[1] // 2], hi=1.0 if y.max() <= 1 else None)
    img = np.concatenate([left, right], axis=1)
    Image.fromarray(img).resize((img.shape[1] * 4, img.shape[0] * 4), Image.NEAREST).save(path)
    return path


def _documentation(model: LoadedModel, path: Path) -> Path:
    card = Path(model.path).with_suffix(".md")
    text = card.read_text(encoding="utf-8") if card.is_file() else f"# dblink model `{model.name}`\n"
    text += f"""

## Use as a bioimage.io model

Input `locs`: localization counts per render pixel ({model.pixel_size:g} nm) and per time step
({model.frames_per_step} raw camera frames), float32, axes (batch, time, y, x), as rendered by
`dblink reconstruct` from a ThunderSTORM table. Output `reconstruction`: the probability that a render
pixel holds structure (0-1), same axes and size. The network is bidirectional over time: every output
step depends on the whole input sequence, so do not tile along time; feed windows of about
±{model.window} steps (2·{model.window} + 1 steps) and keep the central outputs, as `dblink reconstruct` does.
"""
    if "alidation" not in text:
        text += "\n## Validation\n\nSee `dblink evaluate` for quality against simulated ground truth.\n"
    path.write_text(text, encoding="utf-8")
    return path


def build_package(model_ref: str | Path, out: str | Path) -> Path:
    """Write a bioimage.io model package (.zip) for a dblink model file or bundled model name."""
    try:
        from bioimageio.spec import save_bioimageio_package
        from bioimageio.spec.model import v0_5 as bio
    except ImportError:
        raise DBlinkError("bioimage.io export needs the optional extra: pip install 'dblink[bioimageio]' "
                          "(bioimageio.core)") from None
    import shutil

    from .files import atomic_output, check_output_path

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise DBlinkError(f"{out}: the bioimage.io package must be a .zip file")
    check_output_path(out, overwrite=True, suffixes=(".zip",), what="bioimage.io package")
    model = load_model(model_ref)  # metadata checked against the schema, probe forward run
    with tempfile.TemporaryDirectory(prefix="dblink-bioimageio-") as tmp:
        tmp = Path(tmp)
        x, y = _test_tensors(model)
        np.save(tmp / "test_input.npy", x)
        np.save(tmp / "test_output.npy", y)
        descr = _describe(bio, model, tmp, _cover(x, y, tmp / "cover.png"),
                          _documentation(model, tmp / "README.md"))
        with _quiet():
            built = save_bioimageio_package(descr, output_path=tmp / "package.zip")
        with atomic_output(out) as part:  # complete or absent
            shutil.copyfile(built, part)
    return out


def _test_tensors(model) -> tuple[np.ndarray, np.ndarray]:
    """The package's test input and the model's output on it, checked to be a dblink network's."""
    x = _test_input(model)
    try:
        with torch.no_grad():
            y = model.module(torch.from_numpy(x))
    except Exception as exc:  # noqa: BLE001 - a model that fails on the test input
        first = first_line(exc, 160)
        raise DBlinkError(f"{model.path}: not a dblink network: forward(x) on the "
                          f"{' x '.join(map(str, x.shape))} test input failed ({first})") from None
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != x.shape:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise DBlinkError(f"{model.path}: not a dblink network: output {shape} differs from "
                          f"the input's shape {x.shape}")
    y = y.float().numpy().astype(np.float32)
    if not np.isfinite(y).all():
        raise DBlinkError(f"{model.path}: not a dblink network: non-finite outputs on the test input")
    if not model.normalize and (y.min() < 0 or y.max() > 1):
        raise DBlinkError(f"{model.path}: the metadata says 'output: probability' but the network "
                          f"returns values from {y.min():.3g} to {y.max():.3g}")
    return x, y


def _describe(bio, model, tmp: Path, cover: Path, doc: Path):
    """The bioimage.io model description (spec 0.5) of a model whose test tensors are in ``tmp``."""
    px_um = model.pixel_size / 1000.0

    def space(axis: str, out: bool):
        if out:
            return bio.SpaceOutputAxis(id=bio.AxisId(axis), size=bio.SizeReference(
                tensor_id=bio.TensorId("locs"), axis_id=bio.AxisId(axis)),
                unit="micrometer", scale=px_um)
        return bio.SpaceInputAxis(id=bio.AxisId(axis), size=bio.ParameterizedSize(min=16, step=8),
                                  unit="micrometer", scale=px_um)

    time_in = bio.TimeInputAxis(size=bio.ParameterizedSize(min=1, step=1),
                                description=f"steps of {model.frames_per_step} raw frames")
    time_out = bio.TimeOutputAxis(size=bio.SizeReference(tensor_id=bio.TensorId("locs"),
                                                         axis_id=bio.AxisId("time")))
    inp = bio.InputTensorDescr(
        id=bio.TensorId("locs"), description="localization counts per render pixel and step",
        axes=[bio.BatchAxis(), time_in, space("y", False), space("x", False)],
        test_tensor=bio.FileDescr(source=tmp / "test_input.npy"),
        data=bio.IntervalOrRatioDataDescr(type="float32"))
    outp = bio.OutputTensorDescr(
        id=bio.TensorId("reconstruction"), description="probability of structure per pixel (0-1)",
        axes=[bio.BatchAxis(), time_out, space("y", True), space("x", True)],
        test_tensor=bio.FileDescr(source=tmp / "test_output.npy"),
        data=bio.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)))
    cite = [bio.CiteEntry(text=PAPER_TEXT, doi=bio.Doi(PAPER_DOI)),
            bio.CiteEntry(text=f"dblink {__version__}: DBlink reconstructions from ThunderSTORM "
                          f"localization tables (Python package and Fiji plugin), an implementation "
                          f"of the DBlink paper", doi=bio.Doi(PAPER_DOI))]
    return bio.ModelDescr(
        name=f"DBlink {model.name}",
        description=(f"Bidirectional ConvLSTM (DBlink) reconstructing a super-resolved video of "
                     f"{model.meta.get('sample', 'structures')} from SMLM localization maps "
                     f"({model.pixel_size:g} nm pixels, {model.frames_per_step} frames per step)."),
        authors=[bio.Author(name="dblink contributors")],
        cite=cite, license="MIT", tags=["smlm", "super-resolution", "localization-microscopy",
                                        "convlstm", "live-cell", "dblink", "pytorch"],
        documentation=bio.FileDescr(source=doc), covers=[bio.FileDescr(source=cover)],
        inputs=[inp], outputs=[outp], version=__version__,
        weights=bio.WeightsDescr(torchscript=bio.TorchscriptWeightsDescr(
            source=Path(model.path), pytorch_version=bio.Version(torch.__version__.split("+")[0]))),
    )


def _quiet():
    """Silence bioimageio's loguru info logging while packaging."""
    import contextlib

    try:
        from loguru import logger
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def ctx():
        logger.disable("bioimageio")
        try:
            yield
        finally:
            logger.enable("bioimageio")
    return ctx()
