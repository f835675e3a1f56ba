"""The recurrent paradigms as models that train end to end on NumPy arrays.

One class per paradigm of the lecture:

=========================  ==============================  ======================
paradigm                   model                           example
=========================  ==============================  ======================
one to one                 :class:`MLPClassifier`,         the feed-forward
                           :class:`MLPRegressor`           baseline
many to one                :class:`SequenceClassifier`,    sentiment analysis
                           :class:`SequenceRegressor`
many to many, same length  :class:`SequenceTagger`         part-of-speech tagging
one to many                :class:`SequenceGenerator`      image captioning
many to many, different    :class:`Seq2Seq`                translation
next token of a stream     :class:`LanguageModel`          text generation
units of units             :class:`HierarchicalClassifier` words of characters
=========================  ==============================  ======================

Every model takes ``cell="lstm"|"gru"|"rnn"``, ``hidden_size``,
``num_layers``, ``dropout`` and ``seed``, and either ``input_size`` (float
features per step) or ``vocab_size`` and ``embedding_dim`` (token ids in
``[0, vocab_size)``); stacks, reversed and bidirectional layers are
constructor options.  ``fit`` returns a :class:`rnncore.History` and shows
a progress bar; ``predict``, ``score``, ``save`` and ``Model.load`` (an
``.npz`` archive with a JSON configuration, never pickle) complete the
interface.  Sequences are lists of arrays of any lengths, or a padded
array with ``lengths``; batching pads internally, bucketing by length.
"""

from ._base import Model
from .generator import SequenceGenerator
from .hierarchical import HierarchicalClassifier
from .language_model import LanguageModel
from .mlp import MLPClassifier, MLPRegressor
from .seq2seq import Seq2Seq
from .sequence import SequenceClassifier, SequenceRegressor
from .tagger import SequenceTagger

__all__ = ["Model", "MLPClassifier", "MLPRegressor", "SequenceClassifier", "SequenceRegressor", "SequenceTagger",
           "SequenceGenerator", "Seq2Seq", "LanguageModel", "HierarchicalClassifier"]
