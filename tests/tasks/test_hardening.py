"""Bad input end to end, on a generated corpus: odd but valid images (CMYK, 16-bit, palette, alpha,
bilevel) are embedded; corrupt, truncated, zero-byte and giant (decompression-bomb) images are skipped
and reported with their reason; missing files, duplicate ids and empty categories in the catalogue are
reported at load; non-UTF-8 titles stay readable; the run itself goes on to its results."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from tests.conftest import run_script
from tests.index.test_milvus_lifecycle import free_port
from visual_search.data.catalog import load_catalog
from visual_search.data.images import ImageLoadError, load_rgb
from visual_search.data.splits import SplitSpec
from visual_search.embed.embedder import Embedder
from visual_search.encode.timm_encoder import TimmEncoder
from visual_search.errors import UserError
from visual_search.index.milvus import MilvusIndex
from visual_search.utils.cli import CONF_DIR, check_config, group_options

# Images that decode (each becomes RGB) and images that must be skipped, with the reason reported.
READABLE = ("rgb.jpg", "cmyk.jpg", "grey16.png", "palette.png", "palette_alpha.png", "rgba.png")
READABLE += ("la.png", "bilevel.png", "palette.gif")
UNREADABLE = {
    "zero_bytes.jpg": "not an image",
    "random_bytes.jpg": "not an image",
    "truncated.jpg": "cannot decode",
    "truncated.png": "cannot decode",
    "giant.png": "too many pixels",
}


def png_header(width: int, height: int) -> bytes:
    """A 100-byte PNG that claims width x height pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def shape(kind: int, size: int = 48) -> np.ndarray:
    """A dark disc (kind 0) or bar (kind 1) on white: two categories an encoder can tell apart."""
    y, x = np.mgrid[:size, :size] - size / 2
    mask = (x**2 + y**2 < (size / 3) ** 2) if kind == 0 else (abs(x) < size / 8)
    return np.where(mask, 30, 235).astype(np.uint8)


def write_corpus(folder: Path) -> None:
    """Every kind of image a shop catalogue turns up, generated."""
    folder.mkdir(parents=True, exist_ok=True)
    grey = shape(0)
    Image.fromarray(grey).convert("RGB").save(folder / "rgb.jpg", quality=95)
    Image.fromarray(grey).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "grey16.png")
    Image.fromarray(grey).convert("P").save(folder / "palette.png")
    Image.fromarray(grey).convert("P").save(folder / "palette_alpha.png", transparency=0)
    Image.fromarray(grey).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(grey).convert("LA").save(folder / "la.png")
    Image.fromarray(grey).convert("1").save(folder / "bilevel.png")
    Image.fromarray(grey).convert("P").save(folder / "palette.gif")
    for i in range(8):  # the other category, and a few queries
        Image.fromarray(shape(1)).convert("RGB").save(folder / f"bar{i}.png")
        Image.fromarray(shape(0)).convert("RGB").save(folder / f"disc{i}.png")
    jpeg, png = (folder / "rgb.jpg").read_bytes(), (folder / "bar0.png").read_bytes()
    (folder / "zero_bytes.jpg").write_bytes(b"")
    (folder / "random_bytes.jpg").write_bytes(np.random.default_rng(0).bytes(2000))
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "giant.png").write_bytes(png_header(40_000, 40_000))  # 1.6 gigapixels claimed
    (folder / "a_folder.jpg").mkdir()


def write_catalog(root: Path) -> Path:
    """A catalogue CSV over the corpus (latin-1 bytes in one title), with bad rows of every kind."""
    write_corpus(root / "img")
    rows = [f"{name},img/{name},disc {name},discs,gallery" for name in (*READABLE, *UNREADABLE)]
    rows += [f"bar{i},img/bar{i}.png,bar {i},bars,{'query' if i < 2 else 'gallery'}" for i in range(8)]
    rows += [f"disc{i},img/disc{i}.png,disc {i},discs,{'query' if i < 2 else 'gallery'}" for i in range(8)]
    rows += [
        "gone,img/gone.jpg,missing file,discs,gallery",
        "folder,img/a_folder.jpg,a folder named like an image,discs,gallery",
        "bar3,img/bar0.png,duplicate id,bars,gallery",
        "nocat,img/bar0.png,no category,,gallery",
    ]
    body = "item_id,image,title,category,split\n" + "\n".join(rows) + "\n"
    body = body.replace("disc rgb.jpg", "caf\xe9 disc")
    path = root / "catalog.csv"
    path.write_bytes(body.encode("latin-1"))
    return path


def test_every_kind_of_image_in_the_corpus_decodes_or_says_why(tmp_path):
    write_corpus(tmp_path)
    for name in READABLE:
        image = load_rgb(tmp_path / name)
        assert image.mode == "RGB" and image.size == (48, 48), name
        assert np.asarray(image)[24, 24].max() < 80 and np.asarray(image)[0, 0].min() > 200, (
            name
        )  # dark disc on white
    for name, reason in UNREADABLE.items():
        with pytest.raises(ImageLoadError, match=f"{name}: {reason}"):
            load_rgb(tmp_path / name)


def test_a_bad_catalogue_loads_embeds_and_indexes_what_is_usable(tmp_path, caplog):
    items = load_catalog(write_catalog(tmp_path), SplitSpec(protocol="column", val_fraction=0))
    assert items.report.counts == {"missing image": 2, "empty or duplicate item_id": 1, "empty category": 1}
    assert items.items.loc["rgb.jpg", "title"] == "caf\ufffd disc"  # non-UTF-8 byte kept visible
    torch.manual_seed(0)
    encoder = TimmEncoder(weights=None, input_size=32)
    frame = items.split("gallery")
    with caplog.at_level(logging.WARNING):
        gallery = Embedder(encoder, batch_size=8, num_workers=2).embed(frame, "gallery")
    gallery_size = len(READABLE) + len(UNREADABLE) + 12
    assert len(frame) == gallery_size and len(gallery.frame) == gallery_size - len(UNREADABLE)
    assert set(READABLE) <= set(gallery.frame.index) and not set(UNREADABLE) & set(gallery.frame.index)
    assert f"skipped {len(UNREADABLE)} unreadable gallery images" in caplog.text
    for name, reason in UNREADABLE.items():
        assert f"{name}: {reason}" in caplog.text
    fields = gallery.frame.reset_index().assign(label=lambda f: f["category"])
    with MilvusIndex(str(tmp_path / "m.db"), index_type="FLAT") as index:
        index.build(gallery.embeddings, fields, tag="corpus")
        nearest = index.search(gallery.embeddings, k=1)
    assert (nearest.rows[:, 0] >= 0).all() and np.allclose(nearest.distances[:, 0], 0, atol=1e-4)


@pytest.mark.slow
def test_evaluate_runs_through_a_bad_catalogue_and_reports_what_it_skipped(tmp_path):
    path = write_catalog(tmp_path / "shop")
    result = run_script(
        "evaluate.py",
        "dataset=catalog",
        f"dataset.path={path}",
        "dataset/split=column",
        "encoder.input_size=64",
        "datamodule.num_workers=0",
        "logger=none",
        "evaluation.timing.single_queries=2",
        "evaluation.timing.forward_batches=0",
        f"paths.log_dir={tmp_path / 'out'}",
        timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "Traceback" not in log
    assert "catalog: skipped 2 row(s): missing image" in log
    assert "skipped 1 row(s): empty or duplicate item_id" in log and "skipped 1 row(s): empty category" in log
    assert f"skipped {len(UNREADABLE)} unreadable gallery images" in log
    assert "giant.png: too many pixels" in log
    assert (next((tmp_path / "out" / "evaluate" / "runs").iterdir()) / "metrics.json").is_file()


def test_a_milvus_server_that_is_down_ends_with_one_line_before_any_embedding(tmp_path):
    port = free_port()  # nothing listens there
    uri = f"http://127.0.0.1:{port}"
    result = run_script(
        "evaluate.py", "debug=tiny", "logger=none", f"paths.log_dir={tmp_path}",
        "index=milvus_server", f"index.uri={uri}", "index.retries=1", "index.retry_backoff_s=0.01",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr[-2000:]  # one line, the last
    assert errors[0].startswith(f"error: cannot connect to Milvus at index.uri={uri} after 2 attempts: ")
    assert (
        "Traceback" not in result.stderr and "gallery:" not in result.stdout + result.stderr
    )  # before embedding


def test_sweep_launchers_compose_and_a_misspelt_one_is_one_line():
    targets = {"parallel": "joblib_launcher.JoblibLauncher", "slurm": "submitit_launcher.SlurmLauncher"}
    for name, target in targets.items():
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("evaluate", [f"hydra/launcher={name}"], return_hydra_config=True)
        assert cfg.hydra.launcher._target_.endswith(target)
    assert cfg.hydra.launcher.array_parallelism == 16 and cfg.hydra.launcher.partition is None
    with pytest.raises(
        UserError, match="hydra/launcher=jobib is not a choice; hydra/launcher is one of: basic, "
    ):
        check_config("evaluate", ["hydra/launcher=jobib"])
    assert "parallel" in group_options("hydra/launcher") and "submitit_slurm" in group_options(
        "hydra/launcher"
    )


@pytest.mark.slow
def test_a_sweep_runs_its_jobs_in_parallel_processes(tmp_path):
    result = run_script(
        "evaluate.py",
        "-m",
        "hydra/launcher=parallel",
        "debug=tiny",
        "logger=none",
        "index.uri=${hydra:runtime.output_dir}/milvus.db",  # Milvus Lite: one file per job
        "index.nprobe=1,4",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2,backend=loky,prefer=processes" in result.stdout
    board = pd.read_csv(tmp_path / "leaderboard.csv")  # both jobs' rows (the leaderboard is file-locked)
    assert sorted(board["index"].str.extract(r"nprobe=(\d+)")[0].astype(int)) == [1, 4]
