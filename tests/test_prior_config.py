"""The motion prior's config: typed and range-checked, shown by `motionbits config`, and every
`train` option either applied to it or refused in one line."""
from __future__ import annotations

import pytest

import motionbits.training.prior as training_prior
from motionbits.cli import main


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def prior_yaml(tmp_path, text: str = ""):
    path = tmp_path / "my-prior.yaml"
    path.write_text("base: prior-sprites\n" + text)
    return path


def test_config_shows_the_prior_config_typed(capsys):
    code, out, _ = run_cli(["config", "prior-sprites"], capsys)
    assert code == 0
    assert "name: prior-sprites" in out and "  steps: 600" in out
    assert "  model:\n    width: 192\n    depth: 4\n    heads: 4\n    dropout: 0.2" in out   # defaults filled in


def test_settings_table_lists_the_prior_settings(capsys):
    code, out, _ = run_cli(["config", "--table"], capsys)
    assert code == 0
    for key in ("prior.steps", "prior.checkpoint", "prior.model.width", "prior.model.group_autoregressive"):
        assert f"| `{key}` |" in out, key


@pytest.mark.parametrize("text,needle", [
    ("prior:\n  steps: 0\n", "prior: steps = 0, expected at least 1"),
    ("prior:\n  lr: fast\n", "prior: lr = 'fast', expected a number"),
    ("prior:\n  model: {width: wide}\n", "prior.model: width = 'wide', expected a whole number"),
    ("prior:\n  model: {dropout: 1.5}\n", "prior.model: dropout = 1.5, expected at most 0.95"),
    ("prior:\n  model: {colour: red}\n", "prior.model: unknown key(s) colour"),
    ("prior:\n  model: {width: 100, heads: 3}\n", "prior.model.width = 100 must divide by prior.model.heads = 3"),
])
def test_bad_prior_settings_are_one_line_naming_file_key_and_value(tmp_path, capsys, text, needle):
    path = prior_yaml(tmp_path, text)
    code, _, err = run_cli(["train", "--config", str(path), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert str(path) in err and needle in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--init-from", "--tokenizer-path"])
def test_options_a_prior_has_no_use_for_are_refused(tmp_path, capsys, flag):
    path = prior_yaml(tmp_path)
    code, _, err = run_cli(["train", "--config", str(path), flag, "x", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"motionbits: error: {flag}: my-prior.yaml is a motion-prior config"), err
    assert not (tmp_path / "run").exists()


def test_data_steps_and_max_minutes_reach_the_prior_run(tmp_path, capsys, monkeypatch):
    seen = {}

    def fake_run(name, run, out, fresh=False, progress=True, device="auto", max_minutes=None):
        seen.update(name=name, run=run, max_minutes=max_minutes)
        return out / "prior.pt"

    monkeypatch.setattr(training_prior, "train_prior_run", fake_run)
    path = prior_yaml(tmp_path)
    code, _, err = run_cli(["train", "--config", str(path), "--data", "DATA/sprites", "--steps", "7",
                            "--max-minutes", "0.5", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert seen["name"] == "my-prior" and seen["run"].data == "DATA/sprites" and seen["run"].steps == 7
    assert seen["max_minutes"] == 0.5
    assert seen["run"].model.group_autoregressive is True                      # from prior-sprites


def test_the_documented_table_has_the_prior_rows():
    from pathlib import Path

    from motionbits.prior_config import prior_settings_rows

    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    assert "\n".join(prior_settings_rows()) in doc          # regenerate with `motionbits config --table`
