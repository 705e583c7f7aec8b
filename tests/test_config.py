import pytest

from toyformer import ConfigError, RunConfig
from toyformer.config import read_config_file


def test_defaults_take_the_task_layout():
    assert RunConfig.from_dict({"task": "reverse"}).layout == "tagger"


def test_dotted_and_leaf_overrides():
    cfg = RunConfig.from_dict({"task": "reverse"}).with_overrides(["model.n_layers=3", "length=7", "lr=1e-3", "seed=4"])
    assert (cfg.model.n_layers, cfg.task.params["length"], cfg.train.lr, cfg.seed) == (3, 7, 0.001, 4)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.n_heads=5", "not divisible"),
        ("model.norm=middle", "allowed: pre, post"),
        ("nope=1", "unknown key 'nope'"),
        ("model.nope=1", "allowed in model"),
        ("model.n_layers=two", "must be an integer"),
        ("length=0", "task.length=0"),
        ("layout=diagonal", "allowed: classifier, tagger, causal, seq2seq"),
        ("n_layers", "key=value"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        RunConfig.from_dict({"task": "reverse"}).with_overrides([override])
    assert "\n" not in str(info.value)


def test_unknown_task_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="allowed: .*reverse"):
        RunConfig.from_dict({"task": "reverze"})


def test_round_trip_through_dict():
    cfg = RunConfig.from_dict({"task": {"name": "reverse", "length": 9}, "model": {"head_hidden": [8, 4]}})
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("suffix, text", [
    (".yaml", "task: {name: reverse, length: 6}\nmodel: {n_layers: 3}\n"),
    (".toml", "[task]\nname = 'reverse'\nlength = 6\n[model]\nn_layers = 3\n"),
    (".json", '{"task": {"name": "reverse", "length": 6}, "model": {"n_layers": 3}}'),
])
def test_config_files(tmp_path, suffix, text):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    cfg = RunConfig.load(path)
    assert cfg.task.params["length"] == 6 and cfg.model.n_layers == 3


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "none.yaml")
    bad = tmp_path / "c.ini"
    bad.write_text("x")
    with pytest.raises(ConfigError, match="allowed: .yaml"):
        read_config_file(bad)


def test_literal_none_is_the_string_not_null():
    cfg = RunConfig.from_dict({"task": "reverse"}).with_overrides(["model.positional=none", "eval.target=none"])
    assert cfg.model.positional == "none" and cfg.eval.target is None


def test_task_config_defaults_fill_only_unset_keys(monkeypatch):
    from toyformer.tasks import task_class

    cls = task_class("reverse")
    monkeypatch.setattr(cls, "config_defaults", {"train": {"steps": 77, "lr": 0.5}}, raising=False)
    assert RunConfig.from_dict({"task": "reverse"}).train.steps == 77
    cfg = RunConfig.from_dict({"task": "reverse", "train": {"lr": 0.1}})
    assert (cfg.train.steps, cfg.train.lr) == (77, 0.1)
    assert RunConfig.from_dict({"task": "reverse", "layout": "causal"}).train.steps == 2000  # other layout


def test_tuned_defaults_yield_to_conflicting_user_settings():
    cfg = RunConfig.from_dict({"task": "addition"})
    assert cfg.model.place_embedding and cfg.train.steps == 8000  # addition's tuned defaults
    abacus = cfg.with_overrides(["model.positional=abacus"])  # abacus already indexes digit places
    assert (abacus.model.positional, abacus.model.place_embedding, abacus.train.steps) == ("abacus", False, 8000)
    assert cfg.with_overrides(["model.n_layers=3"]).model.place_embedding  # no conflict: kept
    assert cfg.with_overrides(["layout=seq2seq"]).model.d_model == 32  # another layout: its own tuned values
    with pytest.raises(ConfigError, match="place_embedding"):  # both set by the user: still an error
        cfg.with_overrides(["model.positional=abacus", "model.place_embedding=true"])


def test_layout_defaults_apply_at_their_layout_and_yield_to_the_user():
    causal = RunConfig.from_dict({"task": "parity", "layout": "causal"})
    assert (causal.model.d_model, causal.model.n_layers, causal.data.batch_size) == (32, 3, 64)
    assert RunConfig.from_dict({"task": "parity"}).model.head_hidden == (64,)  # default layout: config_defaults
    mine = causal.with_overrides(["model.d_model=48", "train.steps=10"])
    assert (mine.model.d_model, mine.model.n_layers, mine.train.steps) == (48, 3, 10)


def test_every_layout_default_is_a_layout_the_task_fits_and_builds():
    from toyformer.models import FITS
    from toyformer.tasks import list_tasks, task_class

    for name in list_tasks():
        cls = task_class(name)
        for layout in getattr(cls, "layout_defaults", {}):
            assert layout != cls.default_layout and cls.kind in FITS[layout], (name, layout)
            RunConfig.from_dict({"task": name, "layout": layout})  # builds: every key and value is valid


def test_overrides_of_a_loaded_config_keep_its_values():
    full = RunConfig.from_dict({"task": "addition", "model": {"n_layers": 3}}).to_dict()
    cfg = RunConfig.from_dict(full).with_overrides(["train.lr=0.01"])
    assert (cfg.model.n_layers, cfg.model.place_embedding, cfg.train.lr) == (3, True, 0.01)


def test_overrides_fill_a_section_left_empty_in_a_config_file():
    cfg = RunConfig.from_dict({"task": "reverse", "model": None})  # YAML "model:" with nothing under it
    assert cfg.with_overrides(["model.n_layers=3"]).model.n_layers == 3


def test_a_null_layout_is_the_tasks_default_layout():
    base = RunConfig.from_dict({"task": "reverse"})
    assert base.layout == "tagger"
    assert RunConfig.from_dict({"task": "reverse", "layout": None}).layout == "tagger"
    assert base.with_overrides(["layout=none"]).layout == "tagger"
