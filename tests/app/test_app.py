"""The web app in a real browser (headless Chromium from Debian's chromium + chromium-driver, driven
by selenium): uploads show a preview of what the model sees; a transfer from uploaded example clips
plays with sharp pixels, has the frames `motionbits transfer` writes for the same seed, and offers
the result alone and the side-by-side; a text file renamed .mp4 gets a message on the page and the
app goes on serving (the Bitrate tab then works on a clicked example); the page shows no server
path; the server serves none of the machine's other files."""
from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from motionbits.app.server import serve
from motionbits.cli import main

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_S = 60
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")   # gradio's own pandas deprecations


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(checkpoint):
    torch.set_num_threads(1)          # the model is tiny; the browser wants the other core
    port = free_port()
    page, session = serve(checkpoint, port=port, device="cpu", block=False)
    yield f"http://127.0.0.1:{port}/", session
    page.close()
    session.close()
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file(), \
        "install the browser: apt-get install -y chromium chromium-driver (.ci/run does)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM                      # given paths: selenium downloads nothing
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1600", "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def wait_for(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(lambda d: condition(d), message=what)


def upload(driver, component: str, path: Path) -> None:
    """Put a file into a gradio File component (its hidden <input type=file>) and wait until it shows."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"#{component} input[type=file]").send_keys(str(path))
    shown = f"#{component} td.filename[aria-label='{path.name}']"
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, shown), f"{path.name} uploaded")


def status_text(driver, component: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, component).text


def wait_for_status(driver, component: str, *words: str) -> str:
    """The status box's text once it has one of `words` in it."""
    return wait_for(driver, lambda d: any(w in status_text(d, component) for w in words) and status_text(d, component),
                    f"{component} says {' or '.join(words)}")


def open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text.strip() == name).click()


def video_frames(path_or_bytes) -> np.ndarray:
    """Decoded frames uint8 [T, H, W, 3] of an mp4 (a path or its bytes)."""
    import io

    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with av.open(source) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def image_width(driver, selector: str):
    """The natural width of a loaded <img> under `selector`, or None while there is none."""
    return driver.execute_script(f"const i = document.querySelector('{selector} img');"
                                 "return i && i.complete && i.naturalWidth;")


def test_transfer_plays_and_gives_the_cli_s_frames(app, browser, checkpoint, tmp_path):
    from selenium.webdriver.common.by import By

    url, session = app
    content, driver_clip = session.examples[0], session.examples[1]
    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "transfer-run"), "the page loaded")
    upload(browser, "transfer-content", content)
    upload(browser, "transfer-driver", driver_clip)
    # Each upload shows what the model sees: a 64x64 clip as a 256-pixel GIF, drawn with sharp pixels.
    for preview in ("#transfer-content-preview", "#transfer-driver-preview"):
        assert wait_for(browser, lambda d: image_width(d, preview), f"{preview} shown") == 256
    assert browser.execute_script("return getComputedStyle(document.querySelector("
                                  "'#transfer-driver-preview img')).imageRendering") == "pixelated"
    browser.find_element(By.ID, "transfer-run").click()
    done = wait_for_status(browser, "transfer-status", "Done in", "Error")
    assert "seed 0" in done, done
    # It plays: the browser decodes frames of the side-by-side size and its clock moves.
    playing = wait_for(browser, lambda d: d.execute_script(
        "const v = document.querySelector('#transfer-video video');"
        "if (!v || v.readyState < 2) return null;"
        "v.muted = true; v.play();"
        "return v.currentTime > 0 ? [v.duration, v.videoWidth, v.videoHeight] : null;"), "the video played")
    duration, width, height = playing
    assert duration == pytest.approx(2.0, abs=0.15)                   # 16 frames at the driver's 8 fps
    assert (width, height) == (4 * (3 * 64 + 2 * 2), 4 * 64)          # enlarged 4x with nearest neighbour
    assert browser.execute_script("return getComputedStyle(document.querySelector("
                                  "'#transfer-video video')).imageRendering") == "pixelated"
    # The served file has the frames the CLI writes for the same files and seed.
    src = browser.execute_script("return document.querySelector('#transfer-video video').src")
    served = video_frames(urllib.request.urlopen(src, timeout=10).read())
    cli_out = tmp_path / "cli.mp4"
    assert main(["transfer", "--checkpoint", str(checkpoint), "--content", str(content), "--motion", str(driver_clip),
                 "--side-by-side", "--seed", "0", "--device", "cpu", "--scale", "4", "-o", str(cli_out)]) == 0
    assert served.shape == (16, 256, 784, 3)
    assert np.array_equal(served, video_frames(cli_out))
    other_seed = tmp_path / "seed1.mp4"
    main(["transfer", "--checkpoint", str(checkpoint), "--content", str(content), "--motion", str(driver_clip),
          "--side-by-side", "--seed", "1", "--device", "cpu", "--scale", "4", "-o", str(other_seed)])
    assert not np.array_equal(served, video_frames(other_seed))       # the comparison can tell seeds apart
    # Both the result alone and the side-by-side can be downloaded.
    links = wait_for(browser, lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('#transfer-downloads a[download]'), a => a.href);"),
        "the download links")
    names = sorted(urllib.parse.unquote(link).rsplit("/", 1)[-1] for link in links)
    assert names == ["transfer-result.mp4", "transfer-side-by-side.mp4"], links
    alone = video_frames(urllib.request.urlopen(next(l for l in links if "result" in l), timeout=10).read())
    assert alone.shape == (16, 256, 256, 3)


def test_bad_upload_is_a_message_on_the_page_and_the_app_keeps_serving(app, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, session = app
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a video, just text renamed .mp4\n")
    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "transfer-run"), "the page loaded")
    upload(browser, "transfer-content", session.examples[0])
    upload(browser, "transfer-driver", fake)
    browser.find_element(By.ID, "transfer-run").click()
    message = wait_for_status(browser, "transfer-status", "Error")
    assert "holiday.mp4" in message and "cannot be read as video" in message
    assert str(fake.parent) not in message and "/tmp" not in message     # the server's paths stay hidden
    # Still serving: the Bitrate tab encodes a clicked example and shows the file's size and the plot.
    open_tab(browser, "Bitrate")
    browser.find_element(By.CSS_SELECTOR, "#bitrate-examples button[aria-label='Thumbnail 3 of 3']").click()
    shown = f"#bitrate-clip td.filename[aria-label='{session.examples[2].name}']"
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, shown), "the example in the input")
    assert wait_for(browser, lambda d: image_width(d, "#bitrate-clip-preview"), "its preview") == 256
    browser.find_element(By.ID, "bitrate-run").click()
    report = wait_for_status(browser, "bitrate-status", "Done in")
    assert "bytes" in report and "kbps" in report and "16 frames at 8 fps" in report
    assert wait_for(browser, lambda d: d.execute_script(
        "const i = document.querySelector('#bitrate-plot img'); return i && i.complete && i.naturalWidth;"),
        "the plot") == 720


def test_the_page_shows_no_server_path(app, browser, checkpoint):
    from selenium.webdriver.common.by import By

    url, _ = app
    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "transfer-run"), "the page loaded")
    text = ""
    for tab in ("Transfer", "Bitrate", "Generate", "Model"):
        open_tab(browser, tab)
        text += browser.find_element(By.TAG_NAME, "body").text
    text = " ".join(text.split())
    assert "Model: run/last.pt" in text and "motionbits train --config" in text   # how to get the Generate tab
    assert str(checkpoint.parent.parent) not in text and "/tmp/" not in text


def test_the_server_serves_no_other_file(app, checkpoint):
    url, _ = app
    for path in (checkpoint, Path(__file__).resolve()):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}gradio_api/file={urllib.parse.quote(str(path))}", timeout=10)
        assert refused.value.code in (403, 404)
