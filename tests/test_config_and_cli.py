"""Configs load strictly, and bad input gives one clear line with a non-zero exit code."""
import subprocess
import sys

import pytest
import yaml

from motionbits.cli import main
from motionbits.config import load_config, PACKAGED_CONFIGS
from motionbits.errors import MotionbitsError


@pytest.mark.parametrize("path", sorted(PACKAGED_CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_packaged_configs_load(path):
    from motionbits.generate import PRIOR_KEYS, is_prior_config

    if is_prior_config(path):  # a motion-prior run: checked by its own keys
        values = yaml.safe_load(path.read_text())
        assert set(values["prior"]) <= PRIOR_KEYS and "checkpoint" in values["prior"]
        return
    cfg = load_config(path.stem)
    assert cfg.name == path.stem


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  widht: 3\n")
    with pytest.raises(MotionbitsError, match="widht"):
        load_config(str(bad))


def test_corrupt_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(MotionbitsError, match="not valid YAML"):
        load_config(str(bad))


def test_target_above_ceiling(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {groups: 2, codebook_size: 4}\ntrain: {target_bits: 10}\n")
    with pytest.raises(MotionbitsError, match="target_bits"):
        load_config(str(bad))


def test_zero_checkpoint_interval_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {checkpoint_every: 0}\n")
    with pytest.raises(MotionbitsError, match="checkpoint_every"):
        load_config(str(bad))


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def test_cli_bad_inputs_give_one_line(tmp_path, capsys, sprites_root):
    (tmp_path / "corrupt.yaml").write_text("train: {steps: [1,\n")
    (tmp_path / "notsprites").mkdir()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    cases = [
        (["train", "--config", "no-such-config"], "no such file"),
        (["train", "--config", str(tmp_path / "corrupt.yaml")], "not valid YAML"),
        (["train", "--config", "sprites-cpu", "--data", str(tmp_path / "missing")], "missing"),
        (["train", "--config", "sprites-cpu", "--data", str(tmp_path / "notsprites")], "notsprites"),
        (["train", "--config", "sprites-cpu", "--max-minutes", "0"], "--max-minutes"),
        (["demo", "--out", str(tmp_path / "d"), "--max-minutes", "-1"], "--max-minutes"),
        (["data", "sprites", "--out", str(tmp_path / "o"), "--sheets", str(tmp_path / "notsprites")], "notsprites"),
        (["evaluate", "--checkpoint", str(tmp_path / "junk.pt")], "junk.pt"),
        (["train", "--config", "talking-head-cpu-taef2", "--tokenizer-path", str(tmp_path / "no-taef2")], "no-taef2"),
        (["transfer", "--checkpoint", str(tmp_path / "nothing.pt"), "--content", "a.png", "--motion", "b.mp4",
          "-o", str(tmp_path / "x.gif")], "nothing.pt"),
    ]
    for args, needle in cases:
        code, err = run_cli(args, capsys)
        assert code == 2, args
        assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err, (args, err)


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "motionbits.cli", "train", "--config", str(tmp_path / "x.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("motionbits: error:")



@pytest.mark.parametrize("argv", [["sweep", "--config", "sprites-cpu", "--bits", "4,x"],
                                  ["bench", "--sample-steps", "0"]])
def test_number_lists_are_checked_in_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("motionbits: error: --") and "\n" not in err
