"""NumPy implementations written from scratch. Never imports torch."""

from companion.scratch.readout import fit_ridge, lagged_recall, r2_score, sliding_windows
from companion.scratch.recurrence import (
    linear_recurrence_closed_form,
    rnn_hidden_states,
    rnn_step,
    unroll,
    unrolled_function,
)

__all__ = [
    "fit_ridge",
    "lagged_recall",
    "linear_recurrence_closed_form",
    "r2_score",
    "rnn_hidden_states",
    "rnn_step",
    "sliding_windows",
    "unroll",
    "unrolled_function",
]
