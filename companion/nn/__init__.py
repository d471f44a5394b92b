"""PyTorch modules written from scratch (imports torch; ``import companion`` does not).

cells        RNNCell, LSTMCell, GRUCell with torch.nn's parameter names and gate order
layers       Recurrent (any cell over a batch-first sequence) and SequenceModel
ensemble     many seeds and learning rates of one model trained as one batched model
conditioned  a generator conditioned on a vector three ways (chapter 7)
decoding     greedy, sampling (temperature, top-k, nucleus), beam and exact search
stacked      bidirectional and stacked layers in torch's layout, deep transitions (ch. 10-11)
"""

from companion.nn.cells import GRUCell, LSTMCell, RNNCell, copy_from_torch, make_cell
from companion.nn.conditioned import ConditionedGenerator
from companion.nn.decoding import Decoded, beam_search, exact_search, greedy, sample
from companion.nn.ensemble import Ensemble, train_ensemble
from companion.nn.layers import Recurrent, SequenceModel, numpy_init_
from companion.nn.stacked import Bidirectional, StackedRNN, Tagger, copy_stacked_from_torch

__all__ = ["Bidirectional", "ConditionedGenerator", "Decoded", "Ensemble", "GRUCell",
           "LSTMCell", "RNNCell", "Recurrent", "SequenceModel", "StackedRNN", "Tagger",
           "beam_search", "copy_from_torch", "copy_stacked_from_torch", "exact_search",
           "greedy", "make_cell", "numpy_init_", "sample", "train_ensemble"]
