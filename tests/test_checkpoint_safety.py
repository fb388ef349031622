"""No code runs from a file: a checkpoint, a prior, an --init-from run or a run's last.pt whose
pickle would call a function is refused in one line before anything in it runs."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from motionbits.cli import main
from tests.helpers import tiny_config


class WritesMarker:
    """Unpickling this calls open(marker, "w"): the file appears if the payload ever runs."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_payload(path: Path, marker: Path, kind: str = "motionbits") -> Path:
    """A file shaped like a checkpoint of `kind` with the payload among its fields."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": kind, "version": 2, "config": {}, "step": 0, "ema": WritesMarker(marker)}, path)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, sprites_root) -> tuple[Path, Path]:
    """(config file, run folder of a 1-step tiny model)."""
    d = tmp_path_factory.mktemp("tiny")
    values = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                         train={"steps": 1}).to_dict()
    config = d / "tiny.yaml"
    config.write_text(yaml.safe_dump(values))
    assert main(["train", "--config", str(config), "--out", str(d / "run")]) == 0
    return config, d / "run"


def refused_in_one_line(argv: list[str], payload: Path, marker: Path, capsys) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and str(payload) in err, err
    assert "holds pickled code, refused; motionbits loads only data" in err
    assert not marker.exists(), "the payload ran"


def test_model_checkpoint_with_code_is_refused(tmp_path, capsys):
    marker, payload = tmp_path / "ran", write_payload(tmp_path / "evil.pt", tmp_path / "ran")
    refused_in_one_line(["transfer", "--checkpoint", str(payload), "--content", "a.gif", "--motion", "b.gif",
                         "-o", str(tmp_path / "out.gif")], payload, marker, capsys)


def test_prior_checkpoint_with_code_is_refused(tiny_run, tmp_path, capsys):
    _, run = tiny_run
    marker, payload = tmp_path / "ran", write_payload(tmp_path / "prior.pt", tmp_path / "ran", "motionbits-prior")
    refused_in_one_line(["generate", "--checkpoint", str(run), "--prior", str(payload), "--content", "a.gif",
                         "-o", str(tmp_path / "out.gif")], payload, marker, capsys)


def test_init_from_with_code_is_refused(tiny_run, tmp_path, capsys):
    config, _ = tiny_run
    marker, payload = tmp_path / "ran", write_payload(tmp_path / "stage1" / "last.pt", tmp_path / "ran")
    refused_in_one_line(["train", "--config", str(config), "--init-from", str(payload), "--out", str(tmp_path / "run")],
                        payload, marker, capsys)


def test_resume_from_a_last_pt_with_code_is_refused(tiny_run, tmp_path, capsys):
    config, _ = tiny_run
    marker, payload = tmp_path / "ran", write_payload(tmp_path / "run" / "last.pt", tmp_path / "ran")
    refused_in_one_line(["train", "--config", str(config), "--out", str(tmp_path / "run")], payload, marker, capsys)


def test_own_checkpoints_load_as_data_and_resume(tiny_run, tmp_path, capsys):
    """What a run stores (config, RNG states, generator, optimizer) passes the data-only load, and
    so does a checkpoint of the earlier layout, whose numpy RNG state was a uint32 array."""
    config, run = tiny_run
    shutil.copytree(run, tmp_path / "run")
    older = torch.load(run / "last.pt", weights_only=True)
    older["rng"]["numpy"] = np.random.get_state()
    (tmp_path / "older").mkdir()
    torch.save(older, tmp_path / "older" / "last.pt")
    for folder in ("run", "older"):
        assert main(["train", "--config", str(config), "--out", str(tmp_path / folder), "--steps", "2"]) == 0
        assert "resuming" in capsys.readouterr().out
