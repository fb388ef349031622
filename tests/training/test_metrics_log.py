"""A metrics.jsonl that holds lines training never wrote (a list, bytes that are not UTF-8, a step
that is not a number, JSON nested past Python's recursion limit) does not stop the resume: those
lines are dropped with one warning, the log's own lines are kept and each step is logged once."""
import json

from motionbits.training.bcd import train
from tests.helpers import tiny_config


def test_a_resume_drops_lines_that_are_not_log_lines_with_one_warning(sprites_root, tmp_path, capsys):
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                      train={"steps": 4, "log_every": 1, "checkpoint_every": 2})
    run = tmp_path / "run"
    train(cfg, run, progress=False, max_steps=2)
    log = run / "metrics.jsonl"
    with open(log, "ab") as f:
        f.write(b'[1, 2, 3]\n\xff\xfe not UTF-8\n{"step": "two"}\n' + b"[" * 100_000 + b"\n{\"step\": 1, \"lo")
    capsys.readouterr()
    train(cfg, run, progress=False)
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "dropped" in line] == [
        f"warning: {log}: dropped 5 line(s) that are not log lines (lines 3, 4, 5, 6, 7: not UTF-8, not JSON, "
        "or not an object with a whole-number step)"]
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4]


def test_a_kill_s_cut_off_last_line_is_dropped_without_a_warning(sprites_root, tmp_path, capsys):
    cfg = tiny_config(data={"root": str(sprites_root), "image_size": 64}, model={"patch_size": 16},
                      train={"steps": 2, "log_every": 1, "checkpoint_every": 1})
    run = tmp_path / "run"
    train(cfg, run, progress=False, max_steps=1)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "loss": 0.')
    capsys.readouterr()
    train(cfg, run, progress=False)
    assert "dropped" not in capsys.readouterr().err
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
