"""DataModule: every split loads with the encoder's transforms; unreadable images are skipped and reported."""

import logging
import shutil
from pathlib import Path

import pytest
import torch

from visual_search.data.datamodule import RetrievalDataModule
from visual_search.data.polyvore import load_polyvore
from visual_search.data.splits import SplitSpec
from visual_search.data.transforms import Augment, Preprocess, eval_transform, train_transform
from visual_search.embed.embedder import embed_loader
from visual_search.encode.timm_encoder import TimmEncoder
from visual_search.errors import UserError

PRE = Preprocess(input_size=32, resize_size=36, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="bicubic")


def datamodule(root: Path, num_workers: int = 0, titles: str = "{title}") -> RetrievalDataModule:
    return RetrievalDataModule(
        load_polyvore(root, SplitSpec()),
        eval_transform=eval_transform(PRE),
        train_transform=train_transform(PRE, Augment()),
        batch_size=8,
        num_workers=num_workers,
        titles=titles,
    )


def test_every_split_yields_normalised_batches(tiny_polyvore: Path):
    data = datamodule(tiny_polyvore)
    gallery, query = data.predict_dataloader()
    loaders = {
        "train": data.train_dataloader(),
        "val": data.val_dataloader(),
        "gallery": gallery,
        "query": query,
    }
    for split, loader in loaders.items():
        seen = 0
        for batch in loader:
            assert batch["image"].shape[1:] == (3, 32, 32) and batch["image"].dtype == torch.float32
            assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
            assert batch["label"].tolist() == data.frame(split)["label"].to_numpy()[batch["index"]].tolist()
            seen += len(batch["index"])
        # train drops the last incomplete batch; the others see every item
        assert seen == len(data.frame(split)) or split == "train"


def test_titles_follow_the_template_over_the_items_columns(tiny_polyvore: Path):
    data = datamodule(tiny_polyvore, titles="{category}: {title}")
    batch = next(iter(data.val_dataloader()))
    frame = data.frame("val").iloc[batch["index"].numpy()]
    assert batch["title"] == [f"{c}: {t}" for c, t in zip(frame["category"], frame["title"], strict=True)]
    assert batch["title"][0] != frame["title"].iloc[0]
    with pytest.raises(UserError, match=r"datamodule.titles='\{colour\}' names 'colour'; the items have"):
        next(iter(datamodule(tiny_polyvore, titles="{colour}").val_dataloader()))


def test_augmentation_changes_training_images_only(tiny_polyvore: Path):
    data = datamodule(tiny_polyvore)
    torch.manual_seed(0)
    first = next(iter(data.loader("gallery", train=True)))
    second = next(iter(data.loader("gallery", train=True)))
    assert not torch.equal(first["image"], second["image"])
    a, b = next(iter(data.loader("gallery"))), next(iter(data.loader("gallery")))
    assert torch.equal(a["image"], b["image"])


def test_unreadable_images_are_skipped_and_reported(tiny_polyvore: Path, tmp_path: Path, caplog):
    root = Path(shutil.copytree(tiny_polyvore, tmp_path / "polyvore_outfits"))
    data = datamodule(root, num_workers=2)  # worker processes, as in a real run
    broken = data.frame("gallery").index[:3]
    (root / "images" / f"{broken[0]}.jpg").write_bytes(b"")
    (root / "images" / f"{broken[1]}.jpg").write_bytes(
        (root / "images" / f"{broken[1]}.jpg").read_bytes()[:200]
    )
    (root / "images" / f"{broken[2]}.jpg").unlink()  # vanished after loading the table
    encoder = TimmEncoder(weights=None, input_size=32)
    with caplog.at_level(logging.WARNING):
        embeddings, rows = embed_loader(encoder, data.loader("gallery"), "gallery")
    assert len(rows) == len(embeddings) == len(data.frame("gallery")) - 3
    assert not set(data.frame("gallery").index[rows.numpy()]) & set(broken)
    assert (
        "skipped 3 unreadable gallery images" in caplog.text
        and f"{broken[2]}.jpg: file not found" in caplog.text
    )
