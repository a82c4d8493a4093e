"""Quantisation-aware fine-tuning without tensorflow-model-optimization.

The TF Model Optimization toolkit does not support Keras 3, so this does the essential
part of QAT by hand: a copy of the network whose conv, depthwise and dense layers see
their kernels rounded to symmetric per-channel int8 in the forward pass, and whose ReLU
outputs are rounded to 8 bits over a moving-average range, with straight-through
gradients. Fine-tuning it for a few epochs moves the float weights to where rounding
hurts less; the weights are then copied back into the plain model and converted by the
usual post-training path.

Simplification, stated in docs/models.md: BatchNorm is not folded into the kernels
during fine-tuning (the converter folds it afterwards), so the simulated rounding of a
kernel is close to, not identical with, the rounding of the folded int8 kernel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from harness.models.arrays import Arrays
from harness.models.mobilenet import ArchConfig, build_mobilenet_v1

if TYPE_CHECKING:  # pragma: no cover
    import keras

log = logging.getLogger(__name__)


def _fake_quant_kernel(kernel: Any, channel_axis: int) -> Any:
    """Symmetric per-channel int8 rounding with a straight-through gradient."""
    import tensorflow as tf

    axes = [i for i in range(len(kernel.shape)) if i != channel_axis % len(kernel.shape)]
    scale = tf.maximum(tf.reduce_max(tf.abs(kernel), axis=axes, keepdims=True), 1e-8) / 127.0
    q = tf.clip_by_value(tf.round(kernel / scale), -127.0, 127.0) * scale
    return kernel + tf.stop_gradient(q - kernel)


def _layers() -> dict[str, Any]:
    """Quantising subclasses, defined lazily so this module imports without TensorFlow."""
    import keras
    import tensorflow as tf
    from keras import layers

    class QConv2D(layers.Conv2D):
        def convolution_op(self, inputs: Any, kernel: Any) -> Any:
            return super().convolution_op(inputs, _fake_quant_kernel(kernel, -1))

    class QDepthwiseConv2D(layers.DepthwiseConv2D):
        def call(self, inputs: Any) -> Any:
            kernel = _fake_quant_kernel(self.kernel, 2)
            out = keras.ops.depthwise_conv(
                inputs, kernel, strides=self.strides, padding=self.padding,
                dilation_rate=self.dilation_rate, data_format=self.data_format,
            )  # fmt: skip
            if self.use_bias:
                out = out + self.bias
            return out

    class QDense(layers.Dense):
        def call(self, inputs: Any, training: Any = None) -> Any:
            out = keras.ops.matmul(inputs, _fake_quant_kernel(self.kernel, -1))
            if self.use_bias:
                out = out + self.bias
            return self.activation(out)

    class FakeQuantReLU(layers.Layer):
        """ReLU whose output is rounded to 8 bits over an EMA of the observed maximum."""

        def __init__(self, momentum: float = 0.99, **kw: Any) -> None:
            super().__init__(**kw)
            self.momentum = momentum

        def build(self, input_shape: Any) -> None:
            self.range_max = self.add_weight(name="range_max", shape=(), initializer="ones", trainable=False)

        def call(self, x: Any, training: Any = None) -> Any:
            x = tf.nn.relu(x)
            if training:
                observed = tf.reduce_max(x)
                self.range_max.assign(self.momentum * self.range_max + (1 - self.momentum) * observed)
            return tf.quantization.fake_quant_with_min_max_vars(
                x, 0.0, tf.maximum(self.range_max, 1e-3), num_bits=8
            )

    return {"Conv2D": QConv2D, "DepthwiseConv2D": QDepthwiseConv2D, "Dense": QDense,
            "ReLU": FakeQuantReLU}  # fmt: skip


def build_qat_model(arch: ArchConfig) -> keras.Model:
    """The architecture with quantising layers in place of conv, dense and ReLU."""
    import keras

    q = _layers()
    base = build_mobilenet_v1(arch)

    def clone(layer: Any) -> Any:
        cls = q.get(type(layer).__name__)
        if cls is None:
            return layer.__class__.from_config(layer.get_config())
        if type(layer).__name__ == "ReLU":
            return cls(name=layer.name)
        return cls.from_config(layer.get_config())

    return keras.models.clone_model(base, clone_function=clone)


def _copy_by_name(src: keras.Model, dst: keras.Model) -> None:
    """Copy weights layer by layer; the observers' ranges have no counterpart and stay behind."""
    for layer in dst.layers:
        weights = src.get_layer(layer.name).get_weights()
        if weights and len(weights) == len(layer.get_weights()):
            layer.set_weights(weights)


def qat_finetune(
    model: keras.Model,
    arch: ArchConfig,
    train: Arrays,
    val: Arrays,
    epochs: int,
    lr: float = 2e-4,
    batch_size: int = 32,
    seed: int = 0,
) -> keras.Model:
    """Fine-tune ``model`` with simulated int8 and return a plain float model of the result."""
    import keras

    from harness.models.training import make_dataset

    keras.utils.set_random_seed(seed)
    qmodel = build_qat_model(arch)
    _copy_by_name(model, qmodel)
    qmodel.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                   metrics=["accuracy"])  # fmt: skip
    ds = make_dataset(train, min(batch_size, len(train)), True, True, seed, arch.channels)
    vds = make_dataset(val, 64, False, False, seed, arch.channels)
    hist = qmodel.fit(ds, validation_data=vds, epochs=epochs, verbose=0)
    log.info("QAT fine-tuning: %s", {k: v[-1] for k, v in hist.history.items()})
    out = build_mobilenet_v1(arch)
    _copy_by_name(qmodel, out)
    return out
