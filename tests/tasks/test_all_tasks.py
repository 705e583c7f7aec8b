"""Properties every registered task must have."""

import doctest
import importlib
import pkgutil

import pytest
import torch

import toyformer.tasks
from toyformer import ConfigError
from toyformer.tasks import PAD, get_task, list_tasks, task_class

NO_LENGTH = ("lookup_table", "modular_arithmetic")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list_tasks())
def test_shapes_ids_and_padding(name):
    task = get_task(name)
    ex = task.sample(64, gen())
    assert ex.input.dtype == ex.target.dtype == torch.long
    assert ex.input.shape[0] == ex.target.shape[0] == 64
    assert 0 <= ex.input.min() and ex.input.max() < len(task.vocab)
    assert 0 <= ex.target.min() and ex.target.max() < len(task.vocab)
    if task.kind == "classify":
        assert ex.target.shape[1] == 1 and (ex.target != PAD).all()
    if task.kind == "tag":
        assert ex.target.shape == ex.input.shape
    for t in (ex.input, ex.target):  # right-padded: no real token after a pad
        is_pad = (t == PAD).long()
        assert (is_pad.cummax(1).values == is_pad).all()


@pytest.mark.parametrize("name", list_tasks())
def test_seeded_and_deterministic(name):
    task = get_task(name)
    a, b, c = task.sample(32, gen(1)), task.sample(32, gen(1)), task.sample(32, gen(2))
    assert torch.equal(a.input, b.input) and torch.equal(a.target, b.target)
    if name not in ("alternating", "count_ones"):  # tiny domains may repeat
        assert not torch.equal(a.input, c.input)


@pytest.mark.parametrize("name", list_tasks())
def test_domain_is_distinct_and_consistent(name):
    task = get_task(name)
    dom = task.domain()
    if dom is None:
        return
    assert len({tuple(r) for r in dom.input.tolist()}) == len(dom)
    # every sampled example is in the domain, with the same answer
    answers = {tuple(i): tuple(t) for i, t in zip(dom.input.tolist(), dom.target.tolist())}
    ex = task.sample(200, gen())
    for i, t in zip(ex.input.tolist(), ex.target.tolist()):
        assert answers[tuple(i)] == tuple(t)


@pytest.mark.parametrize("name", list_tasks())
def test_class_metadata_and_docstring_example(name):
    cls = task_class(name)
    assert cls.kind in ("classify", "tag", "seq2seq")
    assert cls.default_layout in ("classifier", "tagger", "causal", "seq2seq", "masked")
    assert isinstance(cls.holdout, bool)
    assert cls.description and "\n" not in cls.description and "Worked example" in cls.__doc__


@pytest.mark.parametrize("name", list_tasks())
def test_length_override_or_rejection(name):
    task = get_task(name)
    if name in NO_LENGTH:
        with pytest.raises(ConfigError, match=f"task '{name}' has no length;"):
            task.sample(2, gen(), length=3)
    else:  # a shorter length gives a different, valid sample; a nonsense length is refused
        ex = task.sample(4, gen(), length=2)
        assert ex.input.max() < len(task.vocab) and ex.target.max() < len(task.vocab)
        with pytest.raises(ConfigError):
            task.sample(2, gen(), length=0)


MODULES = sorted(m.name for m in pkgutil.iter_modules(toyformer.tasks.__path__))


@pytest.mark.parametrize("module", MODULES)
def test_doctests(module):
    mod = importlib.import_module(f"toyformer.tasks.{module}")
    assert doctest.testmod(mod, extraglobs={"torch": torch}).failed == 0
