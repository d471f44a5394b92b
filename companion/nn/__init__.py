"""PyTorch modules written from scratch (imports torch; ``import companion`` does not).

cells   RNNCell, LSTMCell, GRUCell with torch.nn's parameter names and gate order
layers  Recurrent (any cell over a batch-first sequence) and SequenceModel
"""

from companion.nn.cells import GRUCell, LSTMCell, RNNCell, copy_from_torch, make_cell
from companion.nn.layers import Recurrent, SequenceModel, numpy_init_

__all__ = ["GRUCell", "LSTMCell", "RNNCell", "Recurrent", "SequenceModel", "copy_from_torch",
           "make_cell", "numpy_init_"]
