"""The category classifier behind filter=predicted: centroids in the index's space, zero-shot prompts
from the category names, a fine-tuned head; and how `auto` chooses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visual_search.encode.finetuned import CategoryHead, FineTunedEncoder
from visual_search.encode.open_clip_encoder import OpenClipEncoder
from visual_search.encode.timm_encoder import TimmEncoder
from visual_search.errors import UserError
from visual_search.search.classifier import (
    CategoryClassifier,
    ClassifierSettings,
    check_filter,
    nearest_centroid,
    resolve_method,
)


def test_nearest_centroid_by_hand():
    reference = np.array([[1.0, 0.0], [0.8, 0.2], [0.0, 1.0], [0.1, 0.9]])
    labels = np.array([3, 3, 7, 7])
    queries = np.array([[0.9, 0.3], [0.2, 0.8], [5.0, 4.0]])  # the last one: length does not matter
    assert nearest_centroid(reference, labels, queries).tolist() == [3, 7, 3]


@pytest.fixture(scope="module")
def clip() -> OpenClipEncoder:
    return OpenClipEncoder("ViT-S-32", input_size=64)  # random init: the plumbing, not the accuracy


@pytest.fixture(scope="module")
def timm() -> TimmEncoder:
    return TimmEncoder("tf_efficientnet_lite0", weights=None, input_size=64)


def test_centroids_are_those_of_the_index_vectors_not_the_embeddings(timm):
    vectors = np.array([[1.0, 0.0], [0.8, 0.2], [0.0, 1.0], [0.1, 0.9]])  # the index's (reduced) space
    settings = ClassifierSettings(method="centroid")
    classifier = CategoryClassifier.build(settings, timm, {"a": "A", "b": "B"}, vectors, ["a", "a", "b", "b"])
    embeddings = np.ones((2, 1280))  # the encoder's space: ignored by the centroid classifier
    assert classifier.predict(embeddings, np.array([[0.9, 0.3], [0.2, 0.8]])) == ["a", "b"]
    assert classifier.labels == ["a", "b"] and classifier.predict(embeddings[:0], vectors[:0]) == []


def test_zero_shot_prompts_name_the_categories_and_pick_the_matching_one(clip):
    names = {"1": "t_shirt", "2": "ankle_boot", "3": "handbag"}  # label values are ids, prompts use names
    settings = ClassifierSettings(method="zero_shot", template="a photo of a {}")
    vectors = np.zeros((3, 4))
    classifier = CategoryClassifier.build(settings, clip, names, vectors, ["1", "2", "3"])
    prompts = ["a photo of a handbag", "a photo of a t shirt", "a photo of a ankle boot"]
    queries = clip.encode_text(prompts).detach().numpy()  # queries that are the prompts themselves
    assert classifier.predict(queries, vectors) == ["3", "1", "2"]


def test_head_predicts_the_fine_tuned_classes(timm):
    centres = torch.eye(3, 1280)
    encoder = FineTunedEncoder(timm, ["x", "y", "z"], head=CategoryHead(centres))
    classifier = CategoryClassifier.build(
        ClassifierSettings(), encoder, {"x": "", "y": "", "z": ""}, None, []
    )
    assert classifier.method == "head"
    assert classifier.predict(np.eye(3, 1280)[[2, 0]], np.zeros((2, 4))) == ["z", "x"]
    with pytest.raises(UserError, match="the checkpoint's categories are not this dataset's"):
        CategoryClassifier.build(ClassifierSettings(), encoder, {"x": "", "q": ""}, None, [])


def test_auto_chooses_by_what_the_encoder_has(clip, timm):
    headed = FineTunedEncoder(timm, ["x"], head=CategoryHead(torch.ones(1, 1280)))
    assert resolve_method("auto", clip) == "zero_shot"
    assert resolve_method("auto", timm) == "centroid"
    assert resolve_method("auto", headed) == "head"
    assert resolve_method("centroid", clip) == "centroid"
    with pytest.raises(UserError, match=r"classifier.method=.knn."):
        resolve_method("knn", clip)
    with pytest.raises(UserError, match=r"classifier.method=.knn."):
        ClassifierSettings(method="knn")
    with pytest.raises(UserError, match="needs an encoder with a text tower"):
        resolve_method("zero_shot", timm)
    with pytest.raises(UserError, match="needs a fine-tuned checkpoint trained with a category head"):
        resolve_method("head", timm)
    with pytest.raises(UserError, match="filter='oracel'; choose one of none, oracle, predicted"):
        check_filter("oracel")
