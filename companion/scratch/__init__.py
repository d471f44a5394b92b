"""NumPy implementations written from scratch. Never imports torch.

recurrence  generic dynamical systems, the RNN state update (chapters 1-2)
readout     closed-form linear read-outs that probe memory (chapter 1)
forward     forward pass, softmax, sequence NLL with masks (chapter 3)
bptt        backpropagation through time, truncated BPTT (chapter 4)
gradcheck   finite-difference gradient checking for any loss (chapter 4)
init        the 1/sqrt(fan_in) initialisation (chapter 3)
patterns    output-to-hidden recurrence and sequence-to-vector (chapter 3)
charlm      a character-level language model in NumPy (chapter 3)
longterm    Jacobian products, leaky units, skip connections, echo state networks (chapter 5)
"""

from companion.scratch.bptt import rnn_backward, rnn_loss_and_grads, truncated_bptt
from companion.scratch.forward import log_softmax, rnn_forward, sequence_nll, softmax
from companion.scratch.gradcheck import check_gradients, numerical_gradient, relative_error
from companion.scratch.init import init_rnn_params
from companion.scratch.longterm import (
    jacobian_norms,
    leaky_hidden_states,
    pascanu_bound,
    scale_to_spectral_radius,
    spectral_radius,
)
from companion.scratch.readout import fit_ridge, lagged_recall, r2_score, sliding_windows
from companion.scratch.recurrence import (
    linear_recurrence_closed_form,
    rnn_hidden_states,
    rnn_step,
    unroll,
    unrolled_function,
)

__all__ = [
    "check_gradients",
    "fit_ridge",
    "init_rnn_params",
    "jacobian_norms",
    "leaky_hidden_states",
    "pascanu_bound",
    "scale_to_spectral_radius",
    "spectral_radius",
    "lagged_recall",
    "linear_recurrence_closed_form",
    "log_softmax",
    "numerical_gradient",
    "r2_score",
    "relative_error",
    "rnn_backward",
    "rnn_forward",
    "rnn_hidden_states",
    "rnn_loss_and_grads",
    "rnn_step",
    "sequence_nll",
    "sliding_windows",
    "softmax",
    "truncated_bptt",
    "unroll",
    "unrolled_function",
]
