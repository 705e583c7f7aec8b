"""Training: one loop (``loop.fit``) for a single run and for K batched replicas, the step of
each (``steps``), the optimiser and schedule (``optim``), and the summary of a finished run."""

from toyformer.training.optim import lr_at, make_optimizer
from toyformer.training.replicas import Replicas, load_replicas, parse_replica_set, train_replicas, train_replicas_into
from toyformer.training.single import train, train_into
from toyformer.training.steps import ReplicaStep, SingleStep
from toyformer.training.summary import combine, format_table

__all__ = [
    "ReplicaStep", "Replicas", "SingleStep", "combine", "format_table", "load_replicas", "lr_at", "make_optimizer",
    "parse_replica_set", "train", "train_into", "train_replicas", "train_replicas_into",
]
