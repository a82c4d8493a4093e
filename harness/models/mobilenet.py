"""MobileNetV1-family networks in Keras 3.

The layer sequence follows the MobileNetV1 paper (Howard et al., 2017, table 1) in the
form the MLPerf Tiny VWW reference model uses: a strided 3x3 stem convolution, thirteen
depthwise-separable blocks (3x3 depthwise + 1x1 pointwise, each followed by BatchNorm and
ReLU), average pooling and a softmax classifier. Keeping that exact order and giving the
layers stable names (``stem_conv``, ``block3_dw``, ``block3_pw`` ...) is what lets transfer
learning copy the first k blocks of a pretrained backbone by position, and lets the
analysis map TFLite ops back to blocks.

Any positive alpha works from scratch (ImageNet weights exist only for a few values);
channels are ``max(1, int(filters * alpha))``, the same rule Keras' own MobileNet uses,
so alpha 0.25 gives 8 channels in the stem like the MLPerf model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import keras

# (pointwise filters at alpha 1, depthwise stride) for the 13 blocks of MobileNetV1.
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
STEM_FILTERS = 32


@dataclass(frozen=True)
class HeadConfig:
    """The classifier on top of the backbone.

    ``pool`` is "avg" (an AveragePooling2D over the whole final map, the op the MLPerf
    model uses and TFLM runs as AVERAGE_POOL_2D) or "global" (GlobalAveragePooling2D,
    which the converter lowers to MEAN). ``hidden`` adds a ReLU dense layer of that many
    units before the classifier; ``dropout`` is applied before the classifier.
    """

    pool: str = "avg"
    dropout: float = 0.0
    hidden: int = 0

    def __post_init__(self) -> None:
        if self.pool not in ("avg", "global"):
            raise ConfigError(f"head pool must be 'avg' or 'global', not {self.pool!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"head dropout must be in [0, 1), not {self.dropout}")
        if self.hidden < 0:
            raise ConfigError(f"head hidden units must be >= 0, not {self.hidden}")


@dataclass(frozen=True)
class ArchConfig:
    """Everything that fixes the shape of a MobileNetV1-family network."""

    alpha: float = 0.25
    resolution: int = 96
    channels: int = 3
    num_classes: int = 2
    blocks: int = len(BLOCKS)
    head: HeadConfig = field(default_factory=HeadConfig)
    weight_decay: float = 1e-4
    #: BatchNorm moving-average momentum. Keras' 0.99 needs thousands of steps before the
    #: inference statistics catch up; the short schedules used here (a few hundred steps)
    #: then validate with stale statistics, so 0.9 is the default.
    bn_momentum: float = 0.9

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ConfigError(f"alpha must be positive, not {self.alpha}")
        if self.resolution < 32:
            raise ConfigError(f"resolution must be at least 32 pixels, not {self.resolution}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), not {self.channels}")
        if self.num_classes < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, not {self.num_classes}")
        if not 1 <= self.blocks <= len(BLOCKS):
            raise ConfigError(f"blocks must be between 1 and {len(BLOCKS)}, not {self.blocks}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.resolution, self.resolution, self.channels)

    @property
    def colour(self) -> str:
        return "rgb" if self.channels == 3 else "gray"

    def filters(self, base: int) -> int:
        return max(1, int(base * self.alpha))

    def block_filters(self) -> list[int]:
        """Pointwise output channels of each block, in order."""
        return [self.filters(f) for f, _ in BLOCKS[: self.blocks]]

    def final_map_size(self) -> int:
        """Spatial size of the last block's output ('same' padding halves, rounding up)."""
        size = -(-self.resolution // 2)
        for _, stride in BLOCKS[: self.blocks]:
            size = -(-size // stride)
        return size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchConfig:
        d = dict(data)
        head = d.pop("head", {}) or {}
        return cls(head=HeadConfig(**head), **d)

    def label(self) -> str:
        return f"a{self.alpha:g}-r{self.resolution}-{self.colour}"


def block_layer_names(index: int) -> tuple[str, str, str, str]:
    """Names of the weight layers of block ``index`` (1-based): dw, dw BN, pw, pw BN."""
    p = f"block{index}"
    return (f"{p}_dw", f"{p}_dw_bn", f"{p}_pw", f"{p}_pw_bn")


STEM_LAYER_NAMES = ("stem_conv", "stem_bn")


def build_mobilenet_v1(
    arch: ArchConfig, seed: int | None = None, batch_size: int | None = None
) -> keras.Model:
    """A float Keras model of the given architecture with freshly initialised weights.

    Input is float in [0, 1] (pixel / 255): the int8 converter then gives an input scale
    of 1/255 with zero point -128, that is "uint8 pixel - 128", the convention of the
    MLPerf model, so the same image bytes feed every model of the zoo.

    ``batch_size=1`` is for conversion: with a dynamic batch the converter turns Flatten
    into SHAPE/STRIDED_SLICE/PACK ops that TFLM cannot allocate.
    """
    import keras
    from keras import layers

    if seed is not None:
        keras.utils.set_random_seed(seed)
    reg = keras.regularizers.L2(arch.weight_decay) if arch.weight_decay > 0 else None

    inputs = keras.Input(shape=arch.input_shape, batch_size=batch_size, name="image")
    x = layers.Conv2D(
        arch.filters(STEM_FILTERS),
        3,
        strides=2,
        padding="same",
        kernel_regularizer=reg,
        name="stem_conv",
    )(inputs)
    x = layers.BatchNormalization(momentum=arch.bn_momentum, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, (base, stride) in enumerate(BLOCKS[: arch.blocks], start=1):
        dw, dw_bn, pw, pw_bn = block_layer_names(i)
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", name=dw)(x)
        x = layers.BatchNormalization(momentum=arch.bn_momentum, name=dw_bn)(x)
        x = layers.ReLU(name=f"{dw}_relu")(x)
        x = layers.Conv2D(arch.filters(base), 1, padding="same", kernel_regularizer=reg, name=pw)(x)
        x = layers.BatchNormalization(momentum=arch.bn_momentum, name=pw_bn)(x)
        x = layers.ReLU(name=f"{pw}_relu")(x)
    head = arch.head
    if head.pool == "avg":
        size = arch.final_map_size()
        x = layers.AveragePooling2D(pool_size=size, strides=size, name="head_pool")(x)
        x = layers.Flatten(name="head_flatten")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    if head.hidden:
        x = layers.Dense(head.hidden, activation="relu", name="head_hidden")(x)
    if head.dropout:
        x = layers.Dropout(head.dropout, name="head_dropout")(x)
    outputs = layers.Dense(arch.num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"mobilenet_v1_{arch.label()}")
