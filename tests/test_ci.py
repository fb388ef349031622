"""The README's test command is `bash .ci/run`, and it works on a machine without the browser the
web app's test drives: .ci/install-browser installs Debian's chromium and chromium-driver with
apt-get when either is missing and does nothing when both are there. apt-get is replaced by a
recorder here (the browser on this machine is left alone; CHROMIUM / CHROMEDRIVER point the check
at files that do not exist)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_install(tmp_path: Path, chromium: Path, chromedriver: Path) -> tuple[subprocess.CompletedProcess, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    for tool in ("apt-get", "sudo"):                     # record the call instead of installing
        fake = bin_dir / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CHROMIUM": str(chromium),
           "CHROMEDRIVER": str(chromedriver)}
    done = subprocess.run(["bash", str(ROOT / ".ci" / "install-browser")], env=env, capture_output=True, text=True)
    return done, log.read_text() if log.exists() else ""


def test_a_missing_browser_is_installed_with_apt_get(tmp_path):
    present = tmp_path / "chromedriver"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    for chromium, chromedriver in ((tmp_path / "none" / "chromium", present),
                                   (present, tmp_path / "none" / "chromedriver")):
        done, calls = run_install(tmp_path, chromium, chromedriver)
        assert done.returncode == 0, done.stderr
        installs = [line for line in calls.splitlines() if " install " in line]
        assert "apt-get update -q" in calls and len(installs) == 1
        assert installs[0].endswith("--no-install-recommends chromium chromium-driver")
        (tmp_path / "calls.log").unlink()


def test_a_browser_already_there_is_left_alone(tmp_path):
    present = tmp_path / "chromium"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    done, calls = run_install(tmp_path, present, present)
    assert done.returncode == 0 and calls == ""


def test_the_readme_s_test_command_is_ci_run_which_installs_the_browser_first():
    readme = (ROOT / "README.md").read_text()
    assert "```bash\nbash .ci/run\n```" in readme
    steps = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert steps[-2:] == ["bash .ci/install-browser",
                          "python3 -m venv .venv && . .venv/bin/activate && pip install -q -c constraints.txt "
                          "-e '.[test]' && python -m pytest"]
