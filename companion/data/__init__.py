"""Data for the course: generated from a seed or shipped with the package, never downloaded.

synthetic  the adding and temporal-order problems (Hochreiter & Schmidhuber, 1997)
captions   a synthetic captioning world: scene vectors and the sentences describing them
text       the course's own prose as a character corpus (package data), and a vocabulary
"""

from companion.data.captions import make_captions
from companion.data.synthetic import adding_problem, adding_solved, temporal_order
from companion.data.text import Vocabulary, course_corpus, train_valid_split

__all__ = [
    "Vocabulary",
    "adding_problem",
    "adding_solved",
    "course_corpus",
    "make_captions",
    "temporal_order",
    "train_valid_split",
]
