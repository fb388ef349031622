"""Two trainings on one run folder: the second is refused in one line while the first holds
RUN/.lock, and the lock goes with its holder however that ends (kill -9 included)."""
from __future__ import annotations

import subprocess
import sys

import yaml

from motionbits.cli import main
from motionbits.run_lock import LOCK_NAME, hold_run_folder
from tests.helpers import tiny_config

# The first training, reduced to what matters here: it takes the run folder's lock and keeps it.
HOLDER = """
import sys, time
from motionbits.run_lock import hold_run_folder
with hold_run_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def _config(tmp_path, sprites_root):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(data={"root": str(sprites_root), "image_size": 64},
                                               model={"patch_size": 16}, train={"steps": 1}).to_dict()))
    return path


def test_a_second_training_on_a_held_run_folder_is_refused_until_the_holder_is_killed(sprites_root, tmp_path,
                                                                                     capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        code = main(["train", "--config", str(_config(tmp_path, sprites_root)), "--out", str(run), "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 2 and err.splitlines() == [
            f"motionbits: error: {run}: another training is using this run folder (process {holder.pid}); "
            "wait for it to end or pass another --out"]
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]   # the refused run wrote nothing
    finally:
        holder.kill()   # SIGKILL: no clean-up runs, the kernel drops the lock
        holder.wait()
    with hold_run_folder(run):   # free again, though the killed holder left its .lock file
        pass
    assert not (run / LOCK_NAME).exists()


def test_torchrun_ranks_other_than_zero_take_no_lock(tmp_path, monkeypatch):
    """Rank 0 holds the lock for the whole job; the other ranks of the same job must not be refused."""
    with hold_run_folder(tmp_path / "run"):
        monkeypatch.setenv("RANK", "1")
        with hold_run_folder(tmp_path / "run"):
            pass


def test_a_refused_or_failed_command_leaves_no_folder_it_made(tmp_path):
    run = tmp_path / "new" / "run"
    try:
        with hold_run_folder(run):
            assert (run / LOCK_NAME).is_file()
            raise RuntimeError("the training failed before writing anything")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
