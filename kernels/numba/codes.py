"""Integer codes the compiled kernels switch on, derived from the contract's tuples.

The one place that turns activation, head and optimizer names into integers:
the code of a name is its position in :data:`~fastnn.kernels.contract.ACTIVATIONS`,
:data:`~fastnn.kernels.contract.HEADS` or :data:`~fastnn.kernels.contract.OPTIMIZERS`.
The named module-level constants are frozen into compiled code as literals, so a
``code == SIGMOID`` test costs nothing at run time.
"""

from __future__ import annotations

from ..contract import ACTIVATIONS, HEADS, OPTIMIZERS

#: Activation name -> integer code.
ACTIVATION_CODES: dict[str, int] = {name: i for i, name in enumerate(ACTIVATIONS)}

#: Loss head of ``train_batches`` -> integer code.
HEAD_CODES: dict[str, int] = {name: i for i, name in enumerate(HEADS)}

#: Optimizer name -> integer code.
OPTIMIZER_CODES: dict[str, int] = {name: i for i, name in enumerate(OPTIMIZERS)}

LINEAR = ACTIVATION_CODES["linear"]
SIGMOID = ACTIVATION_CODES["sigmoid"]
RELU = ACTIVATION_CODES["relu"]
TANH = ACTIVATION_CODES["tanh"]
SOFTMAX = ACTIVATION_CODES["softmax"]
STEP = ACTIVATION_CODES["step"]
LEAKY_RELU = ACTIVATION_CODES["leaky_relu"]
ELU = ACTIVATION_CODES["elu"]
GELU = ACTIVATION_CODES["gelu"]
SOFTPLUS = ACTIVATION_CODES["softplus"]
SILU = ACTIVATION_CODES["silu"]

#: Activations whose derivative is not a function of their output ``Y``: the fused
#: trainers keep ``activation'(Z)`` from the forward pass for them, and the
#: dispatchers of :mod:`.scalar` compile their branches only on request.
NEEDS_Z_NAMES: frozenset[str] = frozenset(("elu", "gelu", "softplus", "silu"))
NEEDS_Z: frozenset[int] = frozenset(ACTIVATION_CODES[a] for a in NEEDS_Z_NAMES)

SOFTMAX_CE = HEAD_CODES["softmax_cross_entropy"]
SIGMOID_CE = HEAD_CODES["sigmoid_cross_entropy"]
MSE = HEAD_CODES["mse"]
BCE = HEAD_CODES["binary_crossentropy"]
CCE = HEAD_CODES["categorical_crossentropy"]

SGD = OPTIMIZER_CODES["sgd"]
ADAM = OPTIMIZER_CODES["adam"]
RMSPROP = OPTIMIZER_CODES["rmsprop"]
