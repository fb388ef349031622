"""Stopping `motionbits app` while it runs a request: Ctrl-C (SIGINT) or `kill` (SIGTERM) end the
process cleanly (exit 130 or 0, not the abort torch's threads caused: "terminate called without an
active exception", 134) and leave none of its files: not the uploads gradio kept, not the
request's folder, not the examples (the app runs with its own empty TMPDIR, which must be empty
again afterwards)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers import moving_square_video, write_video

START_S, STOP_S = 240, 60           # the machine may be busy: loading the model and gradio takes a while


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, seconds: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the app exited ({proc.returncode}) while waiting for {what}: {proc.stderr.read()[-2000:]}")
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"no {what} within {seconds} s")


def serving(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("signum,codes", [(signal.SIGINT, (130,)), (signal.SIGTERM, (0,))])
def test_a_signal_mid_request_exits_cleanly_and_removes_every_file(checkpoint, tmp_path, signum, codes):
    from gradio_client import Client, handle_file

    temp = tmp_path / "tmp"
    temp.mkdir()
    long_driver = write_video(tmp_path / "long.mp4", moving_square_video(400, 64), fps=25)   # a request of seconds
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"} | {"TMPDIR": str(temp),
                                                                            "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "motionbits.cli", "app", "--checkpoint", str(checkpoint),
                             "--port", str(port), "--device", "cpu"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: serving(url), START_S, "page", proc)
        client = Client(url, verbose=False, download_files=False)
        job = client.submit(handle_file(str(long_driver)), handle_file(str(long_driver)), 50, 0,
                            api_name="/on_transfer")
        app_root = wait_until(lambda: list(temp.glob("motionbits-app-*")), 10, "the app's folder", proc)[0]
        wait_until(lambda: any((app_root / "requests").glob("*")), 60, "the request running", proc)
        assert any((app_root / "uploads").rglob("long.mp4"))             # gradio keeps the upload in there
        assert not list(app_root.rglob("transfer-*.mp4")) and not job.done()   # stopped mid-request
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=STOP_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in codes, err[-2000:]
    assert "terminate called" not in err and "Traceback" not in err, err[-2000:]
    assert list(temp.iterdir()) == []                                 # uploads, results, examples: all gone
