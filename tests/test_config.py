"""Configs: typed and range-checked values, `base:` inheritance, cross-field rules."""
import pytest
import yaml

from motionbits.config import PACKAGED_CONFIGS, load_config, packaged_config_names, settings_table
from motionbits.errors import MotionbitsError


@pytest.mark.parametrize("name", packaged_config_names())
def test_packaged_configs_load(name):
    if name.startswith("prior-"):
        from motionbits.prior_config import read_prior_run

        assert read_prior_run(PACKAGED_CONFIGS / f"{name}.yaml")[0] == name
        return
    assert load_config(name).name == name


def write(tmp_path, text: str, name: str = "cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_base_inheritance_says_only_what_differs(tmp_path):
    cpu, gpu = load_config("sprites-cpu"), load_config("sprites")
    assert gpu.model.content_reader == cpu.model.content_reader == "patch_pool"   # inherited
    assert gpu.diffusion.p_mean == cpu.diffusion.p_mean == 2.5
    assert (gpu.train.steps, gpu.eval.clips) == (8000, 0) != (cpu.train.steps, cpu.eval.clips)   # overridden
    assert gpu.model == cpu.model
    write(tmp_path, "base: sprites-cpu\ntrain: {steps: 7}\n", "mine.yaml")
    mine = load_config(tmp_path / "mine.yaml")
    assert mine.name == "mine" and mine.train.steps == 7 and mine.train.batch_size == cpu.train.batch_size
    write(tmp_path, "base: b.yaml\n", "a.yaml")
    write(tmp_path, "base: a.yaml\n", "b.yaml")
    with pytest.raises(MotionbitsError, match="loops back"):
        load_config(tmp_path / "a.yaml")


@pytest.mark.parametrize("text,needle", [
    ("model:\n  widht: 3\n", "unknown key(s) model.widht"),
    ("model: [unclosed\n", "not valid YAML at line 2"),
    ("- a\n- b\n", "expected a mapping"),
    ("", "the file is empty"),
    ("train: {lr: fast}\n", "train.lr = 'fast', expected a number"),
    ("train: {batch_size: eight}\n", "train.batch_size = 'eight', expected a whole number"),
    ("train: {batch_size: 8.5}\n", "train.batch_size = 8.5, expected a whole number"),
    ("data: {image_size: '64'}\n", "data.image_size = '64', expected a whole number"),
    ("train: {steps: 0}\n", "train.steps = 0, expected at least 1"),
    ("train: {cross_drive: 'yes'}\n", "train.cross_drive = 'yes', expected true or false"),
    ("train: {ema_decay: 1.5}\n", "train.ema_decay = 1.5, expected at most 1"),
    ("model: {tokenizer: vqgan}\n", "model.tokenizer = 'vqgan', expected one of pixels, taef2, diffusers"),
    ("diffusion: {sigma_data: 0}\n", "diffusion.sigma_data = 0, expected above 0"),
    ("diffusion: {noise_levels: batch}\n", "expected one of frame, clip"),
    ("data: .nan\n", "data must be a mapping"),
    ("train: {checkpoint_every: 0}\n", "train.checkpoint_every = 0, expected at least 1"),
    ("model: {groups: 2, codebook_size: 4}\ntrain: {target_bits: 10}\n", "target_bits=10 is above the ceiling"),
    ("data: {frames: 7}\n", "cross_drive needs an even data.frames"),
    ("base: 3\n", "base = 3, expected a config name or path"),
    ("base: no-such-config\n", "no such file and no packaged config"),
])
def test_bad_values_are_one_line_naming_the_file_and_key(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(MotionbitsError) as err:
        load_config(path)
    message = str(err.value)
    assert needle in message and "\n" not in message
    assert str(path) in message or needle.startswith("no such file")


def test_yaml_1e_3_is_the_number_it_means(tmp_path):
    # YAML 1.1 reads 1e-3 (no dot) as a string; a float setting takes it as the number.
    assert load_config(write(tmp_path, "train: {lr: 1e-3}\n")).train.lr == 1e-3
    assert load_config(write(tmp_path, "train: {steps: 2.0}\n")).train.steps == 2


def test_every_setting_is_documented():
    table = settings_table()
    assert "| `train.lr` | `0.0015` |" in table and "| `diffusion.noise_levels` |" in table
    assert all(line.count("|") == 4 and not line.endswith("|  |") for line in table.splitlines())


def test_packaged_configs_hold_no_experiment_logs():
    for path in PACKAGED_CONFIGS.glob("*.yaml"):
        text = path.read_text()
        assert "README" not in text and "measured" not in text.lower(), path.name
        assert yaml.safe_load(text)  # and parse


def test_the_configuration_doc_lists_every_setting_as_the_code_has_it():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    assert settings_table() in doc        # regenerate with `motionbits config --table`
    for name in packaged_config_names():
        assert f"`{name}`" in doc, name
