"""Transfer learning: copy the first k blocks of a pretrained MobileNetV1 backbone.

The backbone is read layer by layer in the order its model config lists them, and
matched by position to this project's layer sequence (stem conv, stem BN, then per
block: depthwise, BN, pointwise, BN). Reading an HDF5 file with h5py rather than
``keras.models.load_model`` matters: files saved by Keras 2 (such as the MLPerf VWW
model) carry config keys Keras 3 rejects, yet their weights are plain arrays. The
backbone file is only read at run time, from wherever the user keeps it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ModelError
from harness.models.mobilenet import STEM_LAYER_NAMES, ArchConfig, block_layer_names

if TYPE_CHECKING:  # pragma: no cover
    import keras

log = logging.getLogger(__name__)

_KINDS = {
    "Conv2D": "conv",
    "DepthwiseConv2D": "dw",
    "BatchNormalization": "bn",
    "Dense": "dense",
}


@dataclass(frozen=True)
class BackboneLayer:
    kind: str  # conv, dw, bn or dense
    name: str
    weights: list[np.ndarray]


def _h5_layers(path: Path) -> list[BackboneLayer]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ModelError(f"backbone {path} is not a readable HDF5 file ({exc})") from None
    with f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise ModelError(f"backbone {path} holds weights only (no model config); save the whole model")
        config = json.loads(raw if isinstance(raw, str) else raw.decode())
        group = f["model_weights"] if "model_weights" in f else f
        out = []
        for layer in config.get("config", {}).get("layers", []):
            kind = _KINDS.get(layer.get("class_name", ""))
            if kind is None:
                continue
            name = layer["config"]["name"]
            if name not in group:
                raise ModelError(f"backbone {path}: no weights stored for layer {name!r}")
            g = group[name]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
            out.append(BackboneLayer(kind, name, [np.asarray(g[n]) for n in names]))
        return out


def _keras_layers(path: Path) -> list[BackboneLayer]:
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(f"cannot load backbone {path}: {type(exc).__name__}: {exc}") from None

    def walk(layers: list[Any]) -> list[BackboneLayer]:
        out = []
        for layer in layers:
            if hasattr(layer, "layers") and layer.layers:
                out.extend(walk(layer.layers))
                continue
            kind = _KINDS.get(type(layer).__name__)
            if kind is not None:
                out.append(BackboneLayer(kind, layer.name, layer.get_weights()))
        return out

    return walk(model.layers)


def read_backbone(path: Path) -> list[BackboneLayer]:
    """Weight layers of a Keras model file (``.h5`` or ``.keras``), in model order."""
    if not path.is_file():
        raise ModelError(f"backbone file {path} does not exist")
    if path.suffix == ".keras":
        return _keras_layers(path)
    return _h5_layers(path)


def _expected(arch: ArchConfig, blocks: int) -> list[tuple[str, str]]:
    out = [("conv", STEM_LAYER_NAMES[0]), ("bn", STEM_LAYER_NAMES[1])]
    for i in range(1, blocks + 1):
        dw, dw_bn, pw, pw_bn = block_layer_names(i)
        out += [("dw", dw), ("bn", dw_bn), ("conv", pw), ("bn", pw_bn)]
    return out


def _adapt(src: list[np.ndarray], dst: list[np.ndarray], name: str) -> list[np.ndarray] | None:
    """Fit compatible weights that differ in form: a missing conv bias, or RGB to grey.

    Keras' own MobileNet has no conv biases (BN follows), so a zero bias gives the same
    layer. A grey image has equal R, G and B, so the RGB convolution of it equals the
    convolution of one plane with the sum of the three kernels.
    """
    out = list(src)
    if len(out) == 1 and len(dst) == 2:
        out.append(np.zeros_like(dst[1]))
    if name == STEM_LAYER_NAMES[0] and out[0].ndim == 4 and out[0].shape[2] == 3 and dst[0].shape[2] == 1:
        log.info("backbone is RGB, model is grayscale: summing the stem kernel's colour planes")
        out[0] = out[0].sum(axis=2, keepdims=True)
    if len(out) == len(dst) and all(a.shape == b.shape for a, b in zip(out, dst, strict=True)):
        return out
    return None


def copy_backbone(model: keras.Model, path: Path, arch: ArchConfig, blocks: int) -> dict[str, Any]:
    """Copy the stem and the first ``blocks`` blocks of the backbone at ``path`` into ``model``.

    Raises ModelError in one line when the backbone is not a MobileNetV1 of the same
    widths (a different alpha, a different head order, another network altogether).
    """
    if blocks < 1:
        raise ModelError("transfer learning needs at least one block to copy (--freeze-blocks >= 1)")
    src = [layer for layer in read_backbone(path) if layer.kind != "dense"]
    expected = _expected(arch, blocks)
    if len(src) < len(expected):
        raise ModelError(
            f"backbone {path.name} has {len(src)} conv/BN layers, fewer than the "
            f"{len(expected)} that stem + {blocks} blocks need: not a matching MobileNetV1"
        )
    for pos, ((kind, ours), theirs) in enumerate(zip(expected, src, strict=False)):
        if theirs.kind != kind:
            raise ModelError(
                f"backbone {path.name} does not match MobileNetV1: its layer {pos} "
                f"({theirs.name}) is {theirs.kind}, expected {kind} for {ours}"
            )
        layer = model.get_layer(ours)
        want = layer.get_weights()
        weights = theirs.weights
        if len(weights) != len(want) or any(a.shape != b.shape for a, b in zip(weights, want, strict=False)):
            adapted = _adapt(weights, want, ours)
            if adapted is None:
                got = [tuple(w.shape) for w in weights]
                need = [tuple(w.shape) for w in want]
                raise ModelError(
                    f"backbone {path.name} does not match the requested architecture "
                    f"({arch.label()}): {theirs.name} has weights {got}, {ours} needs {need}"
                )
            weights = adapted
        layer.set_weights(weights)
    log.info("copied stem + %d blocks from %s", blocks, path)
    return {"backbone": str(path), "copied_blocks": blocks, "copied_layers": len(expected)}


def set_frozen(model: keras.Model, blocks: int) -> None:
    """Freeze the stem and blocks 1..``blocks``; ``blocks=0`` makes everything trainable.

    In Keras 3 a BatchNormalization layer with ``trainable=False`` also runs in inference
    mode, so frozen blocks keep the backbone's statistics.
    """
    frozen_prefixes = ("stem_",) + tuple(f"block{i}_" for i in range(1, blocks + 1))
    for layer in model.layers:
        layer.trainable = not (blocks > 0 and layer.name.startswith(frozen_prefixes))
