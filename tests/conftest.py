"""Fixtures: tiny configs, and a small real Sprites dataset composed from the sheets the package ships."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import tiny_config

torch.set_num_threads(2)


@pytest.fixture
def one_thread():
    """Tiny nets gain nothing from a second thread, and oversubscribed OpenMP barriers are very slow
    when other jobs share the 2 cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def cfg():
    return tiny_config()


@pytest.fixture(scope="session")
def sprites_root(tmp_path_factory) -> Path:
    """A small real Sprites dataset (6 train and 4 test characters x 9 motions) from the shipped sheets."""
    from motionbits.data.sprites import compose_sprites, split_characters

    train_ids, test_ids = split_characters(0)
    root = tmp_path_factory.mktemp("sprites")
    compose_sprites(None, root, characters=[*train_ids[:6], *test_ids[:4]], progress=False)
    return root


def pytest_sessionfinish(session, exitstatus):
    """A skipped test is a test that did not run: the run fails (the data every test needs ships
    with the package or is made by the test)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped: " + ", ".join(r.nodeid for r in skipped[:5]), red=True)
        session.exitstatus = 1
