"""Category classifiers behind filter=predicted."""

from __future__ import annotations

import numpy as np
import pytest

from visual_search.encoders.open_clip_encoder import OpenClipEncoder
from visual_search.encoders.timm_encoder import TimmEncoder
from visual_search.errors import UserError
from visual_search.evaluation.filters import nearest_centroid, predict_labels, resolve_classifier, zero_shot


def test_nearest_centroid_by_hand():
    reference = np.array([[1.0, 0.0], [0.8, 0.2], [0.0, 1.0], [0.1, 0.9]])
    labels = np.array([3, 3, 7, 7])
    queries = np.array([[0.9, 0.3], [0.2, 0.8], [5.0, 4.0]])  # the last one: length does not matter
    assert nearest_centroid(reference, labels, queries).tolist() == [3, 7, 3]


@pytest.fixture(scope="module")
def clip() -> OpenClipEncoder:
    return OpenClipEncoder("ViT-S-32", input_size=64)  # random init: the plumbing, not the accuracy


def test_zero_shot_picks_the_prompt_the_query_matches(clip):
    names = ["t_shirt", "ankle_boot", "handbag"]
    template = "a photo of a {}"
    # queries that are the text embeddings of the prompts themselves, in another order
    prompts = ["a photo of a handbag", "a photo of a t shirt", "a photo of a ankle boot"]
    queries = clip.encode_text(prompts).detach().numpy()
    assert zero_shot(clip, names, template, queries).tolist() == [2, 0, 1]


def test_auto_chooses_by_text_tower(clip):
    timm = TimmEncoder("tf_efficientnet_lite0", weights=None, input_size=64)
    assert resolve_classifier("auto", clip) == "zero_shot"
    assert resolve_classifier("auto", timm) == "centroid"
    assert resolve_classifier("centroid", clip) == "centroid"
    with pytest.raises(UserError, match=r"classifier.method=.knn."):
        resolve_classifier("knn", clip)
    with pytest.raises(UserError, match="needs an encoder with a text tower"):
        predict_labels("zero_shot", timm, ["a"], "{}", np.ones((1, 4)), np.zeros(1), np.ones((1, 4)))
