"""The `motionbits` command: every verb runs, and bad input is one line with exit code 2."""
import shutil
import subprocess
import sys

import pytest
import yaml

from motionbits.cli import main
from tests.helpers import tiny_config


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_demo_runs_end_to_end_on_a_tiny_config(sprites_root, tmp_path, capsys):
    out = tmp_path / "demo"
    shutil.copytree(sprites_root, out / "data")                    # the demo composes the data only when missing
    config = tmp_path / "tiny-demo.yaml"
    values = tiny_config(data={"image_size": 64}, model={"patch_size": 16}).to_dict()
    config.write_text(yaml.safe_dump({**values, "name": "tiny-demo"}))
    code, printed, err = run_cli(["demo", "--out", str(out), "--config", str(config), "--clips", "8",
                                  "--prior-steps", "2"], capsys)
    assert code == 0, err
    for name in ("transfer.gif", "transfer.png", "eval.md", "eval.json", "timings.json", "judge.safetensors",
                 "tiny-demo/last.pt", "prior.yaml", "tiny-demo/prior/prior.pt"):   # the prior: the app's Generate tab
        assert (out / name).is_file(), name
    assert "swap: motion class transferred" in printed and "minutes: data" in printed


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "motionbits.cli", "train", "--config", str(tmp_path / "x.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("motionbits: error:")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,needle", [
    (["train", "--config", "no-such-config"], "no such file"),
    (["train", "--config", "sprites-cpu", "--steps", "0"], "--steps: 0 must be above 0"),
    (["train", "--config", "sprites-cpu", "--steps", "-5"], "--steps: -5 must be above 0"),
    (["train", "--config", "sprites-cpu", "--device", "cuda"], "no CUDA GPU"),
    (["train", "--config", "sprites-cpu", "--max-minutes", "0"], "--max-minutes"),
    (["sweep", "--config", "sprites-cpu", "--bits", "4,x"], "--bits takes comma-separated numbers"),
    (["bench", "--sample-steps", "0"], "--sample-steps takes numbers of at least 1"),
    (["transfer", "--checkpoint", "x", "--content", "a", "--motion", "b", "-o", "out.gif", "--fps", "-3"], "--fps"),
    (["transfer", "--checkpoint", "x", "--content", "a", "--motion", "b", "-o", "out.xyz"], "unsupported output type"),
])
def test_bad_values_are_one_line(argv, needle, capsys):
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_every_worker_thread_treats_denormals_as_zero_once_the_command_runs():
    """Denormal optimizer moments slowed an fp32 CPU training step 2x when only the main thread
    flushed them; torch's worker threads copy the flag when they start, so the command sets it first."""
    script = (
        "import torch\n"
        "torch.set_num_threads(2)\n"
        "from motionbits.cli import main\n"
        "main(['config', 'sprites-cpu'])\n"
        "x = torch.full((1 << 22,), 1e-39)\n"  # denormal in fp32; split between the two threads
        "print('nonzero', int((x * 1.0).count_nonzero()))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "nonzero 0"
