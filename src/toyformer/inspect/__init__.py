"""Look inside a run: attention weights, embeddings and the model's answers (``capture``),
generation (``generate``), figures (``plots``) and learning curves kept up to date while a run
trains (``live``)."""

from toyformer.inspect.capture import AttentionMaps, EmbeddingMap, attention, embeddings, samples
from toyformer.inspect.generate import generate
from toyformer.inspect.live import CurvesFile, NotebookCurves, live_curves
from toyformer.inspect.plots import plot_lengths, plot_run

__all__ = ["AttentionMaps", "CurvesFile", "EmbeddingMap", "NotebookCurves", "attention", "embeddings", "generate",
           "live_curves", "plot_lengths", "plot_run", "samples"]
