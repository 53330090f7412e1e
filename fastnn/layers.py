"""Layers of a :class:`fastnn.Sequential` model: :class:`Dense`, :class:`Dropout`,
:class:`Flatten`, and the :class:`Input` marker.

Names follow Keras 3: a layer created without ``name=`` is called after its class in
snake case, numbered per process (``dense``, ``dense_1``, ``dense_2``, ...; ``flatten``,
``flatten_1``, ...).  ``get_config()`` returns the constructor arguments, so
``type(layer)(**layer.get_config())`` rebuilds an unbuilt copy (with the same name).

Every layer has ``trainable`` (Keras: ``layer.trainable = False`` freezes its weights;
gradients still flow through it to the layers below).  Setting an attribute a layer
does not have raises ``AttributeError`` (a misspelt ``layer.trainabel = False`` would
otherwise pass silently).

Adding a layer type means: a :class:`Layer` subclass here with ``get_config`` and its
public attributes in ``ATTRIBUTES``, an entry in :data:`LAYER_CLASSES` (so saved
models and ``Sequential.from_config`` find it), and telling ``fastnn.training`` what
it does to the fused ``train_batches`` call (a per-``Dense`` keyword such as
``dropout=``).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from fastnn.kernels.contract import LEAKY_RELU_SLOPE

from . import activations, initializers, regularizers
from .dispatch import validation as chk

_uid_lock = threading.Lock()
_uids: dict[str, int] = {}


def unique_name(prefix: str) -> str:
    """Keras' automatic names: ``prefix`` first, then ``prefix_1``, ``prefix_2``, ..."""
    with _uid_lock:
        n = _uids.get(prefix, 0)
        _uids[prefix] = n + 1
    return prefix if n == 0 else f"{prefix}_{n}"


def check_shape(name: str, shape) -> tuple[int, ...]:
    """A per-sample shape such as ``(784,)`` or ``(28, 28)`` (no batch dimension)."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(
            f"{name} must be a tuple of positive integers without the batch dimension, "
            f"e.g. (784,) or (28, 28); got {shape!r}"
        )
    return tuple(chk.check_int(f"{name}[{i}]", s, low=1) for i, s in enumerate(shape))


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class Layer:
    """Base class: a name, an optional input shape, ``trainable``, and no weights."""

    #: Prefix of automatic names.
    prefix = "layer"

    #: Public attributes of this class (with those of its bases): the only ones that
    #: can be set.  Names starting with ``_`` are internal and not checked.
    ATTRIBUTES: tuple[str, ...] = ("name", "input_shape", "trainable")

    def __init__(self, name=None, input_shape=None, *, trainable=True):
        if name is None:
            name = unique_name(self.prefix)
        elif not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        self.input_shape = None if input_shape is None else check_shape("input_shape", input_shape)
        self.trainable = trainable

    @classmethod
    def settable(cls) -> list[str]:
        """Every public attribute of this layer class, sorted."""
        names = set()
        for klass in cls.__mro__:
            names.update(vars(klass).get("ATTRIBUTES", ()))
        return sorted(names)

    def __setattr__(self, key, value):
        if not key.startswith("_") and key not in type(self).settable():
            raise AttributeError(
                f"{type(self).__name__} layer {getattr(self, 'name', '?')!r} has no attribute "
                f"{key!r}; its attributes are: {', '.join(type(self).settable())}"
            )
        super().__setattr__(key, value)

    @property
    def trainable(self) -> bool:
        """False freezes the layer's weights in ``fit`` (no update, no weight decay,
        no penalty); gradients still flow through it to the layers below."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = check_bool("trainable", value)

    @property
    def built(self) -> bool:
        return True

    def weights(self) -> list[np.ndarray]:
        """The layer's arrays (views), in ``get_weights`` order."""
        return []

    def get_weights(self) -> list[np.ndarray]:
        return [A.copy() for A in self.weights()] if self.built else []

    def count_params(self, n_in: int | None = None) -> int | None:
        return 0

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class Input:
    """The input of a :class:`~fastnn.Sequential` model: ``fastnn.Input(shape=(784,))``.

    Only valid as the first entry of the layer list (as in Keras); it fixes the
    per-sample shape, so the model is built at once.  ``shape`` excludes the batch
    dimension; ``(28, 28)`` needs a :class:`Flatten` next.  Not listed in
    ``model.layers`` (Keras 3 does not list its ``InputLayer`` there either).
    """

    def __init__(self, shape=None, name=None, *, batch_size=None, dtype=None):
        if shape is None:
            raise TypeError("Input needs a shape, e.g. fastnn.Input(shape=(784,))")
        self.per_sample = check_shape("shape", shape)
        if batch_size is not None:
            chk.check_int("batch_size", batch_size, low=1)
        self.batch_size = batch_size
        self.dtype = dtype
        self.name = unique_name("input_layer") if name is None else str(name)

    @property
    def shape(self) -> tuple:
        """``(None, *shape)``, as Keras prints it."""
        return (self.batch_size, *self.per_sample)

    def __repr__(self) -> str:
        return f"Input(shape={self.per_sample})"


class Flatten(Layer):
    """Reshape each sample to one row: ``(n, d1, d2, ...) -> (n, d1*d2*...)``.

    As the first layer, it lets ``fit``/``predict`` take images ``(n, 28, 28)``
    unflattened.  It has no weights; on 2-D data it changes nothing.
    """

    prefix = "flatten"

    def output_size(self, per_sample: tuple[int, ...]) -> int:
        return math.prod(per_sample)

    def get_config(self) -> dict:
        cfg = super().get_config()
        if self.input_shape is not None:
            cfg["input_shape"] = list(self.input_shape)
        return cfg

    def __repr__(self) -> str:
        return f"Flatten(name={self.name!r})"


class Dense(Layer):
    """A fully connected layer: ``Y = activation(X @ W + b)``.

    ``X: (n, n_in)``, ``W: (n_in, units)``, ``b: (units,)``, ``Y: (n, units)``.
    ``W`` and ``b`` are created when the model is built (from ``input_dim``,
    ``input_shape=(n_in,)``, a leading :class:`Input`, or the first data it sees).
    ``activation``: a name of ``fastnn.kernels.contract.ALL_ACTIVATIONS`` or a function
    of :mod:`fastnn.activations` (``None`` means ``"linear"``); ``"step"`` is
    forward-only (it cannot be trained by backpropagation).  ``leaky_relu``'s slope is
    0.2 unless given through ``functools.partial(fastnn.activations.leaky_relu,
    negative_slope=s)`` (kept in ``negative_slope``).

    ``use_bias=False``: no bias at all (``b`` is a frozen array of zeros, which the
    fused trainer never updates).  ``kernel_regularizer``: None, ``"l1"``, ``"l2"``,
    ``"l1_l2"`` or a :mod:`fastnn.regularizers` object; its penalty on ``W`` joins the
    loss.  ``trainable=False`` freezes ``W`` and ``b``.
    """

    prefix = "dense"
    ATTRIBUTES = (
        "units", "activation", "negative_slope", "use_bias", "kernel_initializer",
        "bias_initializer", "kernel_regularizer", "input_dim", "W", "b",
    )  # fmt: skip

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        input_dim=None,
        *,
        kernel_regularizer=None,
        input_shape=None,
        name=None,
        trainable=True,
    ):
        super().__init__(name=name, input_shape=input_shape, trainable=trainable)
        self.units = chk.check_int("units", units, low=1)
        self.activation, self.negative_slope = activations.resolve(activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_initializer = initializers.check(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.check(bias_initializer, "bias_initializer")
        if input_dim is not None:
            input_dim = chk.check_int("input_dim", input_dim, low=1)
        if self.input_shape is not None:
            if len(self.input_shape) != 1:
                raise ValueError(
                    f"Dense takes one feature axis, got input_shape={self.input_shape}; put "
                    "fastnn.Flatten() first to feed images such as (28, 28)"
                )
            if input_dim is not None and input_dim != self.input_shape[0]:
                raise ValueError(
                    f"input_dim={input_dim} and input_shape={self.input_shape} disagree"
                )
            input_dim = self.input_shape[0]
        self.input_dim = input_dim
        self.W: np.ndarray | None = None
        self.b: np.ndarray | None = None

    @property
    def built(self) -> bool:
        return self.W is not None

    @property
    def kernel(self) -> np.ndarray | None:
        """Keras' name for ``W``."""
        return self.W

    @property
    def bias(self) -> np.ndarray | None:
        """Keras' name for ``b`` (None without a bias)."""
        return self.b if self.use_bias else None

    def build(self, n_in: int, rng: np.random.Generator, dtype) -> None:
        """Create ``W: (n_in, units)`` and ``b: (units,)`` from the initializers."""
        self.W = initializers.draw(self.kernel_initializer, (n_in, self.units), rng, dtype)
        if self.use_bias:
            self.b = initializers.draw(self.bias_initializer, (self.units,), rng, dtype)
        else:
            # The contract always adds a bias; a bias-free layer's is zero and frozen
            # (``train_batches(trainable=...)`` never updates it).
            self.b = np.zeros(self.units, dtype=dtype)

    def weights(self) -> list[np.ndarray]:
        """The layer's trainable arrays (views): ``[W, b]``, or ``[W]`` without bias."""
        if not self.built:
            return []
        return [self.W, self.b] if self.use_bias else [self.W]

    def count_params(self, n_in: int | None = None) -> int | None:
        n_in = self.W.shape[0] if self.built else n_in
        if n_in is None:
            return None
        return n_in * self.units + (self.units if self.use_bias else 0)

    def activation_config(self):
        """``activation`` as saved: the name, or ``{"name", "negative_slope"}`` for a
        ``leaky_relu`` with a slope other than the default."""
        if self.activation == "leaky_relu" and self.negative_slope != LEAKY_RELU_SLOPE:
            return {"name": "leaky_relu", "negative_slope": self.negative_slope}
        return self.activation

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "units": self.units,
            "activation": self.activation_config(),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "input_dim": self.input_dim,
        }

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation!r}, name={self.name!r})"


class Dropout(Layer):
    """Inverted dropout (Keras 3 ``Dropout(rate, seed=None)``).

    In ``fit``, each unit of the previous Dense layer's output is zeroed with
    probability ``rate`` and the kept ones are scaled by ``1 / (1 - rate)``; in
    ``predict`` and ``evaluate`` the layer is the identity.  It must follow a Dense
    layer that is not the last one (several Dropouts in a row act as one of rate
    ``1 - prod(1 - rate_i)``).

    The masks come from the op contract's counter-based generator (a function of
    seed, update number, layer index and element index), so every backend draws the
    same masks: the seed is the first Dropout's ``seed`` in the model, else ``fit``'s
    ``seed``.  ``rate`` in ``[0, 1)``.
    """

    prefix = "dropout"
    ATTRIBUTES = ("rate", "seed")

    def __init__(self, rate, seed=None, *, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.rate = chk.check_scalar("rate", rate, low=0, high=1, high_open=True)
        self.seed = None if seed is None else chk.check_int("seed", seed, low=0)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}

    def __repr__(self) -> str:
        return f"Dropout({self.rate}, name={self.name!r})"


#: Layer class names in saved configurations -> classes.
LAYER_CLASSES: dict[str, type[Layer]] = {"Dense": Dense, "Dropout": Dropout, "Flatten": Flatten}


def from_config(entry: dict) -> Layer:
    """A layer from ``{"class_name": ..., "config": {...}}`` (``Sequential.get_config``)."""
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"a layer entry needs 'class_name' and 'config', got {entry!r}")
    name = entry["class_name"]
    if name not in LAYER_CLASSES:
        raise ValueError(f"unknown layer class {name!r}; known: {', '.join(sorted(LAYER_CLASSES))}")
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"the config of a {name} layer must be a dict, got {config!r}")
    return LAYER_CLASSES[name].from_config(config)
