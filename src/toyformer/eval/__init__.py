"""Evaluation: metrics, evaluation of a model on examples (and of a run from its directory),
decoding, length generalisation, and the diagnosis of a run that missed its target."""

from toyformer.eval.decode import beam_search, decode, greedy, sample
from toyformer.eval.diagnosis import chance_level, diagnose, reached_target
from toyformer.eval.evaluate import (answer_columns, by_length, by_position, evaluate, evaluate_config,
                                     evaluate_examples, loss_and_predictions, public)
from toyformer.eval.lengths import evaluate_lengths, format_table, parse_lengths
from toyformer.eval.metrics import exact_match, token_accuracy, token_hits
from toyformer.eval import solved

__all__ = [
    "answer_columns", "beam_search", "by_length", "by_position", "chance_level", "decode", "diagnose", "evaluate",
    "evaluate_config", "evaluate_examples", "evaluate_lengths", "exact_match", "format_table", "greedy",
    "loss_and_predictions", "parse_lengths", "public", "reached_target", "sample", "solved", "token_accuracy",
    "token_hits",
]
