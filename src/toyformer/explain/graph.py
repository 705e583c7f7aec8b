"""A model as a graph for circuits: the *writers* that add to a residual stream, the *readers*
that read one, and the edges between them.

In a pre-norm transformer the residual stream before any read is a sum: the token embeddings,
each head's output through the output projection, each feed-forward output, and constants (the
positions, which are the same for every input of a length, and the biases). So the input of one
reader can be changed for one writer alone: ``input - (writer's value - another value)``. That is
an edge, and ablating it is path patching (``paths``).

========== ============================================== ==========================================
node       writes (hook)                                  reads (hook, before the block's norm)
========== ============================================== ==========================================
input      the token embeddings (``embed.tok``, and the   --
           digit places of numeric tasks: ``embed.place``)
head       ``attn.result[:, :, h]``                       queries, keys, values: ``attn.q_in``,
                                                          ``k_in``, ``v_in`` ``[:, :, h]``
mlp        ``ff.out``                                     ``ff.in``
memory     seq2seq: the encoder's output                  the last encoder ``resid_post``
           (``encoder.final_norm``), read by every
           cross-attention's keys and values
output     --                                             the last ``resid_post`` of the stream
                                                          that produces the answer
========== ============================================== ==========================================

A reader reads every writer of its stream that comes before it in the forward pass. Positions
are not a node: ablating them by the mean or by another input of the same length leaves them as
they are, so a circuit is the flow of what the input says. A post-norm model normalises after
every branch, so its residual is not a sum of writers: it has nodes but no separable edges
(``Graph.separable`` is False) and its circuits are found node by node.

Each node and reader also has its TransformerLens name, as InterpBench writes circuits
(``blocks.0.attn.hook_result[1]``, ``blocks.1.attn.hook_q_input[0]``, ``blocks.0.hook_mlp_out``,
``blocks.0.hook_resid_pre`` for the input, ``blocks.1.hook_resid_post`` for the output; a seq2seq
model's names start with ``encoder.`` or ``decoder.``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from toyformer.errors import ConfigError
from toyformer.explain.data import out_stream, stream_names
from toyformer.models.attention import Attention

CHANNELS = {"q": "queries", "k": "keys", "v": "values"}
LAST = 10**6  # the order of a stream's end (the output reader)


@dataclass(frozen=True)
class Writer:
    """A node that adds to a stream: ``parts`` are ``(hook, head)`` pairs whose activations sum
    to its value (head None: the whole activation)."""

    name: str
    kind: str  # input | head | mlp | memory
    stream: str
    order: int
    parts: tuple[tuple[str, int | None], ...]
    tl: str
    module: str | None = None
    head: int | None = None


@dataclass(frozen=True)
class Reader:
    """A place where a stream is read: ``hook`` (``[B, T, H, d]`` with ``head``, else ``[B, T, d]``)
    of ``node`` (a writer's name, or ``output``)."""

    name: str
    kind: str  # q | k | v | mlp | output | memory
    stream: str
    order: int
    hook: str
    node: str
    tl: str
    head: int | None = None


@dataclass
class Graph:
    writers: list[Writer]
    readers: list[Reader]
    edges: list[tuple[int, int]]  # (writer index, reader index)
    separable: bool
    by_reader: dict[int, list[int]] = field(default_factory=dict)  # reader -> its edge indices

    def __post_init__(self):
        for e, (_, r) in enumerate(self.edges):
            self.by_reader.setdefault(r, []).append(e)

    def edge_name(self, e: int) -> str:
        w, r = self.edges[e]
        return f"{self.writers[w].name} -> {self.readers[r].name}"

    def node_names(self) -> list[str]:
        return [w.name for w in self.writers if w.kind != "memory"]


def _tl(stream: str, layout: str, name: str) -> str:
    return f"{stream}.{name}" if layout == "seq2seq" else name


def build_graph(model, layout: str, separable: bool | None = None) -> Graph:
    """The writers, readers and edges of ``model`` (a transformer of any layout)."""
    stack_of = {"encoder": getattr(model, "encoder", None), "decoder": getattr(model, "decoder", None)}
    if any(s is not None and not hasattr(s, "stack") for s in stack_of.values()):
        raise ConfigError("circuits need a transformer; this model has a recurrent (LSTM) encoder")
    writers: list[Writer] = []
    readers: list[Reader] = []
    pre = True
    for stream in stream_names(layout):
        stack = stack_of[stream].stack
        embed = stack_of[stream].embed
        parts = [(f"{stream}.embed.tok", None)] + ([(f"{stream}.embed.place", None)] if embed.place is not None else [])
        writers.append(Writer(f"{stream} input" if layout == "seq2seq" else "input", "input", stream, 0, tuple(parts),
                              _tl(stream, layout, "blocks.0.hook_resid_pre")))
        for i, block in enumerate(stack.blocks):
            pre = pre and block.pre
            for j, attn in enumerate([block.attn] + ([block.cross_attn] if block.cross_attn is not None else [])):
                _attention(writers, readers, attn, stream, 3 * i + 1 + j, i, layout, cross=j == 1)
            ff = block.ff.hook_name
            writers.append(Writer(ff, "mlp", stream, 3 * i + 3, ((f"{ff}.out", None),),
                                  _tl(stream, layout, f"blocks.{i}.hook_mlp_out"), module=ff))
            readers.append(Reader(ff, "mlp", stream, 3 * i + 3, f"{ff}.in", ff, _tl(stream, layout,
                                                                                    f"blocks.{i}.hook_mlp_in")))
        last = f"{stream}.blocks.{len(stack.blocks) - 1}.resid_post"
        tl_last = _tl(stream, layout, f"blocks.{len(stack.blocks) - 1}.hook_resid_post")
        if stream == out_stream(layout):
            readers.append(Reader("output", "output", stream, LAST, last, "output", tl_last))
        else:  # the seq2seq encoder ends in the memory the decoder's cross-attention reads
            readers.append(Reader("encoder output", "memory", stream, LAST, last, "encoder output", tl_last))
            writers.append(Writer("encoder output", "memory", "memory", 0, (("encoder.final_norm", None),),
                                  "encoder.ln_final.hook_normalized"))
    edges = [(w, r) for r, rd in enumerate(readers) for w, wr in enumerate(writers)
             if wr.stream == rd.stream and wr.order < rd.order]
    return Graph(writers, readers, edges, pre if separable is None else separable)


def _attention(writers, readers, attn: Attention, stream: str, order: int, layer: int, layout: str, cross: bool):
    kind = "cross_attn" if cross else "attn"
    for h in range(attn.n_heads):
        name = f"{attn.name} head {h}"
        writers.append(Writer(name, "head", stream, order, ((f"{attn.name}.result", h),),
                              _tl(stream, layout, f"blocks.{layer}.{kind}.hook_result[{h}]"), attn.name, h))
        for c in "qkv":
            read = stream if c == "q" or not cross else "memory"
            readers.append(Reader(f"{name} {CHANNELS[c]}", c, read, order, f"{attn.name}.{c}_in", name,
                                  _tl(stream, layout, f"blocks.{layer}.{kind}.hook_{c}_input[{h}]"), h))
