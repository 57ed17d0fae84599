"""Evaluation settings that cannot work end in one line before any slow work."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from visual_search.errors import UserError
from visual_search.evaluation.run import check_settings


def settings(**values: object) -> object:
    base = {"k": 10, "filter": "none", "queries": "items", "crop": {"user_box": None}, "checkpoint": None}
    return OmegaConf.create(base | values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"filter": "oracel"}, "filter='oracel'; choose one of none, oracle, predicted"),
        ({"queries": "photos"}, "queries='photos'; choose one of items, scenes"),
        ({"crop": {"user_box": "ground_truth"}}, "crop.user_box=ground_truth needs queries=scenes"),
        ({"k": 0}, "k=0; expected a positive number of results"),
        (
            {"crop": {"policy": "biggest", "user_box": None}},
            "crop.policy='biggest'; choose one of largest, highest_score, all",
        ),
        ({"checkpoint": "/nowhere/epoch_001.ckpt"}, "checkpoint=/nowhere/epoch_001.ckpt: no such file"),
    ],
)
def test_bad_settings_are_one_line_errors(values, message):
    with pytest.raises(UserError, match=message):
        check_settings(settings(**values))


def test_good_settings_pass():
    check_settings(settings(filter="predicted", queries="scenes", crop={"user_box": "ground_truth"}))
