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


def test_switching_model_takes_its_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {path: x.h5}\nmodel: {name: fno, modes: 8, n_layers: 3}\n")
    unet = load_config(path, ["model.name=unet", "model.width=8"])
    assert (unet.model.name, unet.model.width, unet.model.levels) == ("unet", 8, 3)
    assert load_config(path, ["model.name=fno"]).model.modes == 8  # the same model keeps the file's keys
    with pytest.raises(ConfigError, match=r"unknown key 'model.modes'; model 'unet' takes: width, levels$"):
        load_config(path, ["model.name=unet", "model.modes=4"])


def test_a_model_section_given_as_a_flow_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {path: x.h5}\nmodel: {name: fno, modes: 8}\n")
    unet = load_config(path, ["model={name:unet}"])  # a shell drops the space YAML wants after the colon
    assert (unet.model.name, unet.model.levels) == ("unet", 3)
    assert load_config(path, ["model={name:unet,levels:2}"]).model.levels == 2
    with pytest.raises(ConfigError, match=r"'model' is a section, not a value \(got 'unet'\).*--set model.name=unet"):
        load_config(path, ["model=unet"])


def test_modes_per_dimension_for_the_fno_family(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {path: x.h5}\nmodel: {name: fno, modes: [4, 5]}\n")
    fno = load_config(path).model.build(3, 1, 2)
    # oplearn's m keeps -m..m-1 on the first axis (2m rows) and 0..m-1 on the last (m columns)
    assert fno.modes == (4, 5) and fno.spectral[0].weight.shape[2:] == (8, 5, 2)
    for name in ("tfno", "uno", "local_fno"):
        assert load_config(path, [f"model.name={name}", "model.modes=[4,5]"]).model.build(3, 1, 2).modes == (4, 5)
    with pytest.raises(ConfigError, match=r"model.modes \[4, 5\] has 2 entries for 1D data"):
        load_config(path).model.build(3, 1, 1)
    with pytest.raises(ConfigError, match="modes must be a positive integer or a list"):
        load_config(path, ["model.modes=[4,0]"])


def test_overrides_index_lists_and_shipped_configs_load_by_name():
    config = load_config("darcy_fno", ["data.test.1.generate.n=8"])
    assert config.data.test[1].generate.n == 8 and config.data.test[0].generate.n == 200
    with pytest.raises(ConfigError, match="'2' is not an index of data.test, 0 to 1"):
        load_config("darcy_fno", ["data.test.2.path=x.h5"])
    with pytest.raises(
        ConfigError, match="config file 'darcy' does not exist; shipped configs: darcy_diffusion, darcy_fno"
    ):
        load_config("darcy")


def test_sections_and_models_must_fit_the_task():
    with pytest.raises(ConfigError, match="the wos section configures train.task=wos, but train.task is map"):
        validate_config({**BASE, "wos": {}})
    with pytest.raises(ConfigError, match="train.task=diffusion configures its network in its own section"):
        validate_config({**BASE, "train": {"task": "diffusion"}})
    assert validate_config({"data": {"path": "x.h5"}, "train": {"task": "diffusion"}}).model is None
