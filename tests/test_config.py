import copy

import pytest

from oplearn.config import apply_overrides, load_config, parse_override, validate_config
from oplearn.errors import ConfigError

BASE = {"seed": 1, "data": {"path": "train.h5"}, "model": {"name": "fno", "modes": 8}, "train": {"epochs": 3}}


def test_defaults_and_types():
    config = validate_config({"data": {"path": "x.h5"}})
    assert config.model.name == "fno" and config.train.scheduler == "cosine" and config.seed == 0


def test_overrides_dotted_keys_are_typed():
    raw = apply_overrides(copy.deepcopy(BASE), ["train.epochs=7", "data.path=other.h5", "seed=5", "train.lr=2e-3"])
    config = validate_config(raw)
    assert (config.train.epochs, config.data.path, config.seed, config.train.lr) == (7, "other.h5", 5, 2e-3)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epoch=3", "unknown key 'train.epoch' (did you mean 'train.epochs'?)"),
        ("train.epochs=many", "key 'train.epochs'"),
        ("model.modes=-1", "key 'model.modes'"),
        ("model.name=transformer", "key 'model.name': unknown choice 'transformer'; expected one of: 'fno'"),
        ("bogus=1", "unknown key 'bogus'"),
    ],
)
def test_bad_keys_give_one_line_errors(override, message):
    with pytest.raises(ConfigError) as info:
        validate_config(apply_overrides(copy.deepcopy(BASE), [override]))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing required key 'data.path'"):
        validate_config({"data": {}})


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.epochs"])


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_override_values_in_exponent_notation_are_numbers():
    assert parse_override("nu=1e-4") == (["nu"], 1e-4)
    assert parse_override("train.lr=3E-3") == (["train", "lr"], 3e-3)
    assert parse_override("data.path=run1e5") == (["data", "path"], "run1e5")
