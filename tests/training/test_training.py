"""Fine-tuning parts on tiny models: block freezing, every loss's training step, the CLIP objective,
and the checkpoint round trip into the encoder that evaluate.py and serve.py use."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torchvision
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from visual_search.encode.checkpoint import load_finetuned
from visual_search.encode.freeze import blocks, unfreeze_last
from visual_search.errors import UserError
from visual_search.training.module import RetrievalModule

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32
CLASSES = ["bag", "hat", "shoe"]
TINY_TIMM = {
    "_target_": "visual_search.encode.timm_encoder.TimmEncoder",
    "weights": None,
    "input_size": SIZE,
}


def loss_config(name: str) -> dict:
    """The `loss=<name>` config as train.py composes it (defaults lists included)."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=[f"loss={name}"]).loss)


def batch(n: int = 12, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(CLASSES)
    return {
        "image": torch.randn(n, 3, SIZE, SIZE, generator=generator),
        "label": labels,
        "title": [f"a {CLASSES[i]} number {j}" for j, i in enumerate(labels.tolist())],
        "index": torch.arange(n),
    }


def optimizer_step(module: RetrievalModule, data: dict) -> torch.Tensor:
    """One real training step (forward, loss, backward, AdamW step) outside a Trainer."""
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    module.train()
    loss = module.objective(module.model(data["image"]), data, module.model)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def test_block_counts_match_the_documented_mapping():
    resnet = torchvision.models.resnet50()
    resnet.fc = torch.nn.Identity()
    assert len(blocks(resnet)) == 18
    assert len(blocks(timm.create_model("tf_efficientnet_lite0", num_classes=0))) == 20
    frozen = unfreeze_last(resnet, 7)  # the seed's 75 of 175 Keras layers: layer3[2:] + layer4
    trainable = {".".join(n.split(".")[:2]) for n, p in resnet.named_parameters() if p.requires_grad}
    assert trainable == {"layer3.2", "layer3.3", "layer3.4", "layer3.5", "layer4.0", "layer4.1", "layer4.2"}
    assert len(frozen) == 11
    unfreeze_last(resnet, -1)
    assert all(p.requires_grad for p in resnet.parameters())
    unfreeze_last(resnet, 0)
    assert not any(p.requires_grad for p in resnet.parameters())


def test_frozen_blocks_keep_their_batchnorm_statistics():
    module = RetrievalModule(TINY_TIMM, loss_config("cross_entropy"), CLASSES, unfreeze_last=2)
    frozen_bn = module.model.backbone().bn1
    before = frozen_bn.running_mean.clone()
    optimizer_step(module, batch())
    assert not frozen_bn.training and torch.equal(frozen_bn.running_mean, before)
    assert module.model.backbone().bn2.training  # the last block trains


@pytest.mark.parametrize(
    "loss", ["cross_entropy", "arcface", "triplet", "multi_similarity", "supcon", "head_and_metric"]
)
def test_one_training_step_per_loss(loss: str):
    module = RetrievalModule(TINY_TIMM, loss_config(loss), CLASSES, projection_dim=16, unfreeze_last=3)
    backbone = module.model.backbone()
    frozen = backbone.conv_stem.weight.clone()
    last = backbone.conv_head.weight.clone()
    projection = module.model.projection.weight.clone()
    value = optimizer_step(module, batch())
    assert torch.isfinite(value)
    assert torch.equal(backbone.conv_stem.weight, frozen)  # outside the last 3 blocks
    assert not torch.equal(backbone.conv_head.weight, last)
    assert not torch.equal(module.model.projection.weight, projection)
    assert module.model(batch()["image"]).shape == (12, 16)


def test_resnet50_step_trains_only_its_last_blocks():
    encoder = {
        "_target_": "visual_search.encode.torchvision_resnet.TorchvisionResNetEncoder",
        "input_size": SIZE,
    }
    module = RetrievalModule(encoder, loss_config("cross_entropy"), CLASSES, unfreeze_last=7)
    backbone = module.model.backbone()
    early, late = backbone.layer3[1].conv1.weight.clone(), backbone.layer3[2].conv1.weight.clone()
    assert torch.isfinite(optimizer_step(module, batch()))
    assert torch.equal(backbone.layer3[1].conv1.weight, early)
    assert not torch.equal(backbone.layer3[2].conv1.weight, late)


def test_parameter_groups_get_their_own_learning_rates():
    module = RetrievalModule(TINY_TIMM, loss_config("arcface"), CLASSES, projection_dim=8, unfreeze_last=1)
    groups = module.parameter_groups()
    assert set(groups) == {"backbone", "heads"}
    head_ids = {id(p) for p in groups["heads"]}
    assert id(module.model.projection.weight) in head_ids
    assert id(module.objective.criterion.W) in head_ids  # ArcFace's class centres train too


@pytest.fixture(scope="module")
def clip_config() -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "encoder" / "clip_effl0_minilm.yaml"))
    return {**cfg, "input_size": SIZE, "image_weights": None}


@pytest.mark.parametrize("loss", ["clip_contrastive", "head_and_clip"])
def test_clip_contrastive_step_trains_both_towers_and_the_temperature(clip_config, loss):
    module = RetrievalModule(clip_config, loss_config(loss), CLASSES, text_lr=1e-5)
    assert set(module.parameter_groups()) == {"backbone", "text", "heads"}
    logit_scale = module.model.encoder.model.logit_scale
    scale = logit_scale.detach().clone()
    text_weight = next(module.model.encoder.model.text.parameters()).detach().clone()
    value = optimizer_step(module, batch(8))
    assert torch.isfinite(value)
    assert not torch.equal(logit_scale.detach(), scale)
    assert not torch.equal(next(module.model.encoder.model.text.parameters()), text_weight)


def test_lit_locks_the_image_tower(clip_config):
    module = RetrievalModule(clip_config, loss_config("clip_contrastive"), CLASSES, lock_image=True)
    assert not any(p.requires_grad for p in module.model.encoder.model.visual.parameters())
    assert set(module.parameter_groups()) == {"text", "heads"}


@pytest.mark.parametrize("loss", ["clip_contrastive", "head_and_clip"])
def test_contrastive_loss_needs_a_text_tower(loss):
    with pytest.raises(UserError, match="text tower"):
        RetrievalModule(TINY_TIMM, loss_config(loss), CLASSES)


def save(module: RetrievalModule, path: Path) -> Path:
    """A checkpoint as Lightning writes it: the state dict, the hyperparameters, the module's extras."""
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("loss", ["cross_entropy", "arcface", "head_and_metric"])
def test_checkpoint_round_trip_rebuilds_the_model_and_its_head(tmp_path, loss):
    module = RetrievalModule(TINY_TIMM, loss_config(loss), CLASSES, projection_dim=8)
    optimizer_step(module, batch())
    module.eval()
    images = batch(seed=1)["image"]
    with torch.no_grad():
        expected = module.model(images)
        heads = {"arcface": lambda o: o.criterion.get_logits, "head_and_metric": lambda o: o.first.logits}
        trained_head = heads.get(loss, lambda o: o.logits)(module.objective)
        trained = trained_head(expected).argmax(dim=1)
    loaded = load_finetuned(save(module, tmp_path / "model.ckpt"))
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), expected)
    assert loaded.class_names == CLASSES and loaded.can_classify
    assert not any(name.startswith("objective") for name in loaded.state_dict())  # no training state
    assert loaded.classify(expected.numpy()).tolist() == trained.tolist()  # the head it was trained with


def test_a_checkpoint_whose_model_carried_its_objective_still_loads_its_head(tmp_path):
    module = RetrievalModule(TINY_TIMM, loss_config("cross_entropy"), CLASSES)
    optimizer_step(module, batch())
    legacy = {
        key.replace("objective.", "model.objective.", 1): value for key, value in module.state_dict().items()
    }  # the layout of checkpoints written before the head moved out of the training objective
    torch.save({"state_dict": legacy, "hyper_parameters": dict(module.hparams)}, tmp_path / "old.ckpt")
    loaded = load_finetuned(tmp_path / "old.ckpt")
    embeddings = torch.nn.functional.normalize(torch.randn(6, loaded.embed_dim), dim=-1)
    expected = module.objective.logits(embeddings).argmax(dim=1)
    assert loaded.classify(embeddings.numpy()).tolist() == expected.tolist()


def test_a_loss_without_class_centres_gives_no_head(tmp_path):
    module = RetrievalModule(TINY_TIMM, loss_config("triplet"), CLASSES)
    assert not load_finetuned(save(module, tmp_path / "model.ckpt")).can_classify


def test_bad_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_finetuned(tmp_path / "missing.ckpt")
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(UserError, match="not a visual-search training checkpoint"):
        load_finetuned(other)
