"""Data: examples formatted for each layout (``batches``), and the validation, test and training
splits (``splits``), held-out inputs excluded from training."""

from toyformer.data.batches import (IGNORE, Batch, answer_tokens, causal_prompt, format_batch, lengths, stack_batches,
                                    with_eos)
from toyformer.data.splits import Lengths, Splits, TrainData, input_keys, make_splits

__all__ = ["IGNORE", "Batch", "Lengths", "Splits", "TrainData", "answer_tokens", "causal_prompt", "format_batch",
           "input_keys", "lengths", "make_splits", "stack_batches", "with_eos"]
