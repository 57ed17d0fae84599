"""Publish one evaluation run to Lightning loggers, and read back what an offline W&B run recorded.

Offline W&B (0.19 to at least 0.31) writes no files/config.yaml or files/wandb-summary.json
(wandb/wandb#9646): the config and summary live only in `<save_dir>/wandb/offline-run-*/run-<id>.wandb`,
a LevelDB-style log of protobuf records that `offline_summary` and `offline_config` replay. Media go to
`offline-run-*/files/media/{table,images}/`.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from pytorch_lightning.loggers import Logger, WandbLogger
from wandb.proto import wandb_internal_pb2

_MAGIC = b":W&B"
_FILE_HEADER = 7  # magic, 2-byte check value, 1-byte version
_BLOCK = 32768
_CHUNK_HEADER = struct.Struct("<IHB")  # crc32 of type byte + data, data length, chunk type
_RECORD_ENDS = (1, 4)  # FULL, LAST (FIRST and MIDDLE chunks continue a record)
FLUSH_TIMEOUT_S = 120.0  # how long publish waits for W&B's service to write a finished run to disk


def publish(
    loggers: Sequence[Logger],
    config: Mapping[str, Any],
    metrics: Mapping[str, float],
    table: pd.DataFrame | None = None,
    table_key: str = "results",
    image: Image.Image | None = None,
    image_key: str = "retrievals",
) -> None:
    """Log config and scalar metrics to every logger, the table and image to W&B loggers only, then
    finalize each logger and finish W&B runs (Lightning's finalize does not), so offline runs are complete.
    W&B keeps the last logged value of each metric as the run summary."""
    for logger in loggers:
        logger.log_hyperparams(dict(config))
        logger.log_metrics(dict(metrics))
        if isinstance(logger, WandbLogger):
            if table is not None:
                logger.log_table(table_key, dataframe=table)
            if image is not None:
                logger.log_image(image_key, [image])
        logger.finalize("success")
        if isinstance(logger, WandbLogger):
            log_file = Path(logger.experiment.settings.sync_file)
            logger.experiment.finish()
            wait_until_complete(log_file)


def wait_until_complete(path: Path, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
    """Wait until W&B's service has written a finished run's transaction log up to its exit record:
    `finish()` can return before it has (seen with only the 7-byte header on disk, on a busy machine)."""
    deadline = time.monotonic() + timeout_s
    while not _has_exit_record(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"W&B did not finish writing {path} within {timeout_s:.0f} s")
        time.sleep(0.1)


def _has_exit_record(path: Path) -> bool:
    try:
        return any(record.WhichOneof("record_type") == "exit" for record in read_records(path))
    except (OSError, ValueError):  # not created yet, or not even its header written
        return False


def newest_offline_run(run_root: str | Path) -> Path:
    """The most recently written `offline-run-*/run-*.wandb` file anywhere under run_root."""
    runs = list(Path(run_root).rglob("offline-run-*/run-*.wandb"))
    if not runs:
        raise FileNotFoundError(f"no offline W&B run under {run_root}")
    return max(runs, key=lambda p: p.stat().st_mtime)


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, data) of each chunk, skipping block trailers; stops at a truncated or corrupt chunk."""
    pos = _FILE_HEADER
    while pos + _CHUNK_HEADER.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER.size:
            pos += left
            continue
        crc, length, kind = _CHUNK_HEADER.unpack_from(data, pos)
        pos += _CHUNK_HEADER.size
        chunk = data[pos : pos + length]
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            return
        yield kind, chunk
        pos += length


def read_records(path: str | Path) -> Iterator[wandb_internal_pb2.Record]:
    """The protobuf records of a `.wandb` transaction log, in order."""
    data = Path(path).read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{path}: not a W&B transaction log")
    pending = b""
    for kind, chunk in _chunks(data):
        pending += chunk
        if kind in _RECORD_ENDS:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _parent(state: dict[str, Any], item: Any) -> tuple[dict[str, Any], str]:
    """The dict holding an item's (possibly nested) key, created as needed, and the last key."""
    *parents, leaf = list(item.nested_key) or [item.key]
    for key in parents:
        state = state.setdefault(key, {})
    return state, leaf


def _replay(path: Path, field: str) -> dict[str, Any]:
    """Apply every `summary` or `config` record's updates and removals in order."""
    state: dict[str, Any] = {}
    for record in read_records(path):
        if record.WhichOneof("record_type") == field:
            for item in getattr(record, field).update:
                target, key = _parent(state, item)
                target[key] = json.loads(item.value_json)
            for item in getattr(record, field).remove:
                target, key = _parent(state, item)
                target.pop(key, None)
    return state


def offline_summary(run_root: str | Path) -> dict[str, Any]:
    """Run summary (last value of each logged key, plus W&B's `_step`, `_runtime`...) of the newest
    offline W&B run under run_root."""
    return _replay(newest_offline_run(run_root), "summary")


def offline_config(run_root: str | Path) -> dict[str, Any]:
    """Run config (logged hyperparameters, plus W&B's `_wandb`) of the newest offline run under run_root."""
    return _replay(newest_offline_run(run_root), "config")


def offline_identity(run_root: str | Path) -> dict[str, Any]:
    """The name, group and tags of the newest offline W&B run under run_root."""
    for record in read_records(newest_offline_run(run_root)):
        if record.WhichOneof("record_type") == "run":
            run = record.run
            return {"name": run.display_name, "group": run.run_group, "tags": list(run.tags)}
    raise ValueError(f"no run record in the offline W&B run under {run_root}")
