"""Shared fixtures: offline environment, tiny generated datasets, composed configs, a Milvus server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_polyvore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset in the Polyvore layout (generated once per test session)."""
    from visual_search.data.synthetic import SyntheticSpec, generate

    spec = SyntheticSpec(
        num_categories=4, items_per_category=12, image_size=48, num_outfits=12, num_scenes=4, scene_size=96
    )
    return generate(spec, tmp_path_factory.mktemp("synthetic") / "polyvore_outfits")


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus 2.3 standalone server (pip `milvus`, a dev dependency) on free ports, started once
    per test session and stopped after it; yields its URI. Skips (with the reason) if it cannot start."""
    try:
        from tests.milvus_server import configure_server, start

        server = configure_server(tmp_path_factory.mktemp("milvus_server"))
    except (ImportError, RuntimeError) as e:
        pytest.skip(f"no Milvus standalone server to test against: {e} (pip install milvus==2.3.5)")
    try:
        start(server)
    except (OSError, RuntimeError, TimeoutError) as e:
        server.stop()
        pytest.skip(f"the Milvus standalone server did not start: {e}")
    yield f"http://127.0.0.1:{server.listen_port}"
    server.stop()


def tiny_config(log_dir: Path, *overrides: str, config: str = "evaluate") -> DictConfig:
    """The composed config an entry script would run with (`debug=tiny`, outputs under `log_dir`, no
    logger), for building a Pipeline in-process."""
    from visual_search.utils.cli import check_config

    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    base = ["debug=tiny", f"paths.log_dir={log_dir}", "logger=none", "approach=tiny"]
    return check_config(config, [*base, *overrides])


def run_script(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run an entry script (evaluate.py, train.py, serve.py) as a user would."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
