"""Positional encoding as one concept: the table of schemes, every rule between the positional
options, the default size of a position table, and the label of a configuration.

A scheme is how a model knows where each token is. It plugs into the model at one point:

============ ======================================================================
plug         what the scheme's module gives (``toyformer.models.positional``)
============ ======================================================================
``none``     nothing: a causal model still sees order through its mask
``embedding`` a ``[B, T, width]`` term added to the token embeddings
``rotation`` a rotation of queries and keys by their positions (self-attention)
``scores``   a ``[B, H, Tq, Tk]`` bias added to the attention scores
============ ======================================================================

``SCHEMES`` maps each name to its row: the plug point, the module that builds it (``"module:Class"``,
imported when a model is built, so this layer never imports the models) and its properties.
Everything that asks about schemes reads this table: config validation, the model builder, the
label of a length table, the diagnosis, the Chomsky, length and tune tables, the CLI's help and
the guide's table (``markdown_table``). A new scheme is its module plus one row:

>>> register_scheme(Scheme("toy", "scores", "a toy bias", module="my_schemes:ToyBias"))  # doctest: +SKIP

The options that change what a position is (``model.random_positions``, ``digit_positions``,
``symbol_positions``, ``place_embedding``, ``number_embedding``, ``positions_from``) stay flat keys
of ``ModelConfig``, so that config files, run directories, store columns and ``where`` expressions
keep their names; ``PositionalConfig`` gathers them with the scheme's row, and ``check`` holds
every rule between them.

>>> PositionalConfig(SCHEMES["rope"], random=True).label()
'rope+random'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from toyformer.errors import ConfigError

if TYPE_CHECKING:
    from toyformer.config.sections import ModelConfig

Plug = Literal["none", "embedding", "rotation", "scores"]
PLUGS: dict[str, str] = {
    "none": "nothing",
    "embedding": "added to the token embeddings",
    "rotation": "rotates queries and keys (self-attention)",
    "scores": "a bias on the attention scores",
}
MODULES = "toyformer.models.positional"
DEFAULT = "learned"  # ModelConfig.positional's default


@dataclass(frozen=True)
class Scheme:
    """One positional scheme: where it plugs in and what it is.

    ``module`` is ``"package.module:Class"`` (or the class itself) with the plug point's interface
    (``toyformer.models.positional``: ``AddedPositions``, ``RotatedPositions``, ``ScoreBias``).
    ``table``: a learned table of ``max_len`` rows (positions past it share the last row).
    ``digit_places``: it indexes each digit's place in its number itself (numeric tasks only).
    ``both_ends``: ``model.positions_from=both`` applies (an absolute scheme that can also encode
    the distance to the last token: a table gets a second table, a fixed function half the channels).
    Every scheme that reads sequence positions (all but ``none`` and digit-place ones) can be
    randomised (``random_positions``) or coupled (``digit_positions``, ``symbol_positions``).
    """

    name: str
    plug: Plug
    summary: str  # how it encodes positions, in a few words (the guide's table, the CLI's help)
    module: str | type | None = None
    table: bool = False
    digit_places: bool = False
    both_ends: bool = False

    def __post_init__(self):
        if self.plug not in PLUGS:
            raise ConfigError(f"scheme {self.name!r}: plug={self.plug!r} is not allowed; allowed: {', '.join(PLUGS)}")
        if (self.module is None) != (self.plug == "none"):
            raise ConfigError(f"scheme {self.name!r}: a scheme plugged in at {self.plug!r} "
                              f"{'needs a module' if self.module is None else 'has no module'}")

    @property
    def sequence(self) -> bool:
        """Whether it reads sequence positions, which random positions or position coupling may replace."""
        return self.plug != "none" and not self.digit_places


SCHEMES: dict[str, Scheme] = {}


def register_scheme(scheme: Scheme) -> Scheme:
    """Add ``scheme`` to the table (its name must be new); returns it."""
    if scheme.name in SCHEMES:
        raise ConfigError(f"positional scheme {scheme.name!r} is already registered")
    SCHEMES[scheme.name] = scheme
    return scheme


for _row in (
    Scheme("none", "none", "no positions (NoPE)"),
    Scheme("sinusoidal", "embedding", "fixed sines and cosines", f"{MODULES}.embedder:Sinusoidal", both_ends=True),
    Scheme("learned", "embedding", "a learned table (`nn.Embedding(max_len, d)`, the default)",
           f"{MODULES}.embedder:LearnedPositions", table=True, both_ends=True),
    Scheme("rope", "rotation", "rotary position embedding", f"{MODULES}.rope:Rotary"),
    Scheme("alibi", "scores", "a fixed `-slope * distance` bias per head", f"{MODULES}.alibi:ALiBi"),
    Scheme("relative", "scores", "a learned T5-style bucketed bias", f"{MODULES}.relative_bias:RelativeBias"),
    Scheme("abacus", "embedding", "a learned table indexed by each digit's place in its number (numeric tasks)",
           f"{MODULES}.embedder:LearnedPositions", table=True, digit_places=True),
):
    register_scheme(_row)


def names(where=None) -> list[str]:
    """The scheme names (those whose row satisfies ``where``), in table order."""
    return [name for name, s in SCHEMES.items() if where is None or where(s)]


def sequence_schemes() -> list[str]:
    """The schemes that read sequence positions (the ones random positions and coupling apply to)."""
    return names(lambda s: s.sequence)


def candidates(with_none: bool = False) -> list[str]:
    """The schemes to try on a model: every one that reads sequence positions, the default first
    (and, with ``with_none``, no positions last)."""
    tried = sorted(sequence_schemes(), key=lambda name: name != DEFAULT)
    return tried + (names(lambda s: s.plug == "none") if with_none else [])


def scheme(name: str, key: str = "model.positional") -> Scheme:
    """The row of ``name``; an unknown name is a ConfigError naming ``key`` and the allowed ones."""
    if name not in SCHEMES:
        raise ConfigError(f"{key}={name!r} is not allowed; allowed: {', '.join(SCHEMES)}")
    return SCHEMES[name]


def table_size(max_len: int | None, widest: int) -> int:
    """Rows of a position table (and the range of random positions): ``model.max_len``, or by
    default twice the widest sequence plus 8, so that evaluation a little past the trained
    lengths still finds rows of its own."""
    return max_len or 2 * widest + 8


def check_random_fits(max_len: int, seq: int) -> None:
    """Random positions draw ``seq`` distinct positions from ``0..max_len-1``."""
    if seq > max_len:
        raise ConfigError(f"model.max_len={max_len} is shorter than a sequence of {seq} tokens; random positions "
                          f"need max_len >= the longest sequence")


@dataclass(frozen=True)
class PositionalConfig:
    """The positional part of a ``ModelConfig``: the scheme's row and the options that change what a
    position is (``ModelConfig.positions`` gives it)."""

    scheme: Scheme
    random: bool = False  # model.random_positions
    digit: bool = False  # model.digit_positions
    symbol: bool = False  # model.symbol_positions
    place_embedding: bool = False
    number_embedding: bool = False
    both_ends: bool = False  # model.positions_from == "both"
    max_len: int | None = None

    @classmethod
    def of(cls, model: ModelConfig) -> PositionalConfig:
        return cls(scheme(model.positional), model.random_positions, model.digit_positions, model.symbol_positions,
                   model.place_embedding, model.number_embedding, model.positions_from == "both", model.max_len)

    @property
    def coupled(self) -> bool:
        """Positions are digit places or symbol indices, not sequence positions (not ordered like
        the sequence: a key may sit at a higher place than its query)."""
        return self.scheme.digit_places or self.digit or self.symbol

    @property
    def needs_digits(self) -> str | None:
        """The option that needs to know which tokens are digits (a numeric task), or None."""
        if self.scheme.digit_places:
            return f"model.positional={self.scheme.name!r}"
        for option, on in (("digit_positions", self.digit), ("place_embedding", self.place_embedding),
                           ("number_embedding", self.number_embedding)):
            if on:
                return f"model.{option}=true"
        return None

    def table_size(self, widest: int) -> int:
        return table_size(self.max_len, widest)

    def label(self, window: int | None = None) -> str:
        """A short name of the configuration, for tables and plots: ``rope+random``,
        ``relative+digit places+window 1``."""
        return (self.scheme.name + ("+random" if self.random else "") + ("+digit places" if self.digit else "")
                + (f"+window {window}" if window is not None else ""))

    def check(self, n_heads: int, d_model: int) -> None:
        """Every rule between the positional options of a transformer (ConfigError on the first broken)."""
        s, sequence = self.scheme, ", ".join(sequence_schemes())
        if s.plug == "rotation" and (d_model // n_heads) % 2:
            raise ConfigError(f"model.positional={s.name!r} rotates pairs of channels: it needs an even head width; "
                              f"d_model/n_heads = {d_model // n_heads}")
        for option, on in (("random_positions", self.random), ("digit_positions", self.digit)):
            if on and not s.sequence:
                raise ConfigError(f"model.{option}=true does not apply to model.positional={s.name!r} (it reads no "
                                  f"sequence positions); allowed with: {sequence}")
        if self.symbol and (not s.sequence or self.digit or self.random or self.place_embedding):
            raise ConfigError(f"model.symbol_positions=true replaces the positions of model.positional={s.name!r} by "
                              f"symbol indices; allowed with positional {sequence}, and without digit_positions, "
                              "random_positions and place_embedding")
        if self.place_embedding and (s.digit_places or self.digit):
            allowed = ", ".join(names(lambda r: not r.digit_places))
            raise ConfigError(f"model.place_embedding=true adds digit places to sequence positions; with "
                              f"model.positional={s.name!r} and digit_positions={self.digit} the positions already "
                              f"are digit places; allowed: positional {allowed} without digit_positions")
        if self.both_ends and (not s.both_ends or self.digit or self.random):
            raise ConfigError(f"model.positions_from='both' needs model.positional="
                              f"{' or '.join(names(lambda r: r.both_ends))} without digit or random positions, got "
                              f"model.positional={s.name!r}")
        if self.digit and self.random:
            raise ConfigError("model.digit_positions and model.random_positions exclude each other; set one")

    def check_recurrent(self, family: str) -> None:
        """A recurrent network reads tokens in order: no scheme applies (the default is let through unused)."""
        if self.scheme.name not in (DEFAULT, "none"):
            raise ConfigError(f"model.positional={self.scheme.name!r} does not apply to model.family={family!r} (it "
                              "reads tokens in order); allowed: none")

    def check_layout(self, layout: str) -> None:
        """Counting from both ends needs the whole input at once (a model is built for ``layout``)."""
        if self.both_ends and layout not in WHOLE_INPUT:
            raise ConfigError(f"model.positions_from='both' needs the whole input at once; layout {layout!r} "
                              f"generates its answer; allowed layouts: {', '.join(WHOLE_INPUT)}")

    def check_sep(self, layout: str, sep: bool) -> None:
        """Coupled positions in a causal model count the answer's places from its ``<sep>``."""
        if self.coupled and layout == "causal" and not sep:
            raise ConfigError("digit places or symbol indices (model.positional="
                              f"{', '.join(repr(n) for n in names(lambda r: r.digit_places))}, model.digit_positions, "
                              "model.symbol_positions) in the causal layout needs data.sep=true (the answer starts "
                              "after <sep>)")

    def check_task(self, task) -> None:
        """Digit places need a task made of numbers (``task.numeric``)."""
        option = self.needs_digits
        if option is not None and not self.symbol and not getattr(task, "numeric", False):
            raise ConfigError(f"{option} needs a task made of numbers (addition, arithmetic, ...); task "
                              f"{task.name!r} is not; allowed here: model.positional="
                              f"{', '.join(names(lambda r: not r.digit_places))} without digit_positions")


WHOLE_INPUT = ("classifier", "tagger", "masked")  # layouts that read the whole input at once


def markdown_table() -> str:
    """The guide's table of schemes (``docs/guide/models.md``, filled in by the site's hook)."""
    lines = ["| scheme | plug point | what it is |", "|---|---|---|"]
    lines += [f"| `{s.name}` | {PLUGS[s.plug]} | {s.summary} |" for s in SCHEMES.values()]
    return "\n".join(lines)
