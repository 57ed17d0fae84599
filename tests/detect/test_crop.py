"""Box math (clamping, padding, degenerate boxes), the crop policies, user box and fallback, and the one
Cropper (single images and batched lists of files)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from visual_search.detect import Cropper, CropSettings, crop, select_boxes
from visual_search.detect import boxes as B
from visual_search.detect.base import Detections, Detector, NoDetector
from visual_search.detect.crop import crop_boxes, select
from visual_search.errors import UserError


def test_clamp_cuts_boxes_to_the_image_and_collapses_outside_ones():
    clamped = B.clamp([[-5, -5, 30, 40], [10, 10, 200, 90], [120, 0, 150, 10]], width=100, height=80)
    assert clamped.tolist() == [[0, 0, 30, 40], [10, 10, 100, 80], [100, 0, 100, 10]]
    assert B.is_valid(clamped).tolist() == [True, True, False]


def test_pad_grows_each_side_by_a_share_of_the_box_then_clamps():
    assert B.pad([20, 20, 40, 60], 0.1, 100, 100).tolist() == [[18, 16, 42, 64]]
    assert B.pad([0, 0, 50, 50], 0.5, 60, 60).tolist() == [[0, 0, 60, 60]]
    assert B.pad([20, 20, 40, 60], 0.0, 100, 100).tolist() == [[20, 20, 40, 60]]
    with pytest.raises(ValueError, match="padding"):
        B.pad([0, 0, 1, 1], -0.1, 10, 10)


def test_degenerate_boxes_have_no_area_and_are_not_valid():
    boxes = [[10, 10, 10, 20], [10, 20, 30, 5], [0, 0, float("nan"), 5], [0, 0, 0.5, 0.5], [0, 0, 2, 3]]
    assert B.area(boxes).tolist() == [0, 0, 0, 0.25, 6]
    assert B.is_valid(boxes).tolist() == [False, False, False, False, True]
    assert B.is_valid(boxes, min_size=0).tolist() == [False, False, False, True, True]


def test_to_pixels_covers_the_box_inside_the_image_and_keeps_one_pixel():
    assert B.to_pixels([[1.5, 2.2, 10.1, 20.9]], 32, 32) == [(1, 2, 11, 21)]
    assert B.to_pixels([[40, 40, 50, 50]], 32, 32) == [(31, 31, 32, 32)]  # outside: the last pixel


def test_as_boxes_rejects_wrong_shapes():
    assert B.as_boxes([1, 2, 3, 4]).shape == (1, 4)
    with pytest.raises(ValueError, match="boxes must be"):
        B.as_boxes([1, 2, 3])


# Three objects: a big unsure one, a small sure one, a medium one; plus one outside the image.
FOUND = Detections.of(
    [[0, 0, 60, 50], [70, 70, 80, 80], [10, 60, 40, 90], [300, 300, 400, 400]], [0.4, 0.9, 0.6, 1.0]
)


def test_largest_policy_keeps_the_biggest_box_inside_the_image():
    assert select(FOUND, "largest", 100, 100).tolist() == [[0, 0, 60, 50]]


def test_highest_score_policy_keeps_the_most_confident_usable_box():
    assert select(FOUND, "highest_score", 100, 100).tolist() == [[70, 70, 80, 80]]  # 1.0 is outside


def test_all_policy_keeps_every_usable_box():
    assert select(FOUND, "all", 100, 100).tolist() == [[0, 0, 60, 50], [70, 70, 80, 80], [10, 60, 40, 90]]


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of largest, highest_score, all"):
        select(FOUND, "biggest", 100, 100)


def test_crop_pads_the_chosen_box_and_returns_its_pixels():
    image = Image.new("RGB", (100, 100), "white")
    (region,) = crop(image, FOUND, "largest", padding=0.1)
    assert region.source == "detected" and region.box == (0, 0, 66, 55)
    assert region.image.size == (66, 55)
    assert [c.box for c in crop(image, FOUND, "all")] == [(0, 0, 60, 50), (70, 70, 80, 80), (10, 60, 40, 90)]


def test_user_box_overrides_detection_and_is_clamped():
    image = Image.new("RGB", (100, 100), "white")
    (region,) = crop(image, FOUND, "largest", padding=0.0, user_box=[50, 50, 150, 120])
    assert region.source == "user" and region.box == (50, 50, 100, 100)


def test_empty_user_box_is_a_clear_error():
    with pytest.raises(ValueError, match="user box"):
        select_boxes(FOUND, 100, 100, user_box=[200, 200, 300, 300])


def test_no_detection_falls_back_to_the_whole_image():
    image = Image.new("RGB", (64, 48), "white")
    (region,) = crop(image, NoDetector().detect(image), "largest", padding=0.2)
    assert region.source == "whole" and region.box == (0, 0, 64, 48)
    only_degenerate = Detections.of([[10, 10, 10, 30], [-20, -20, -1, -1]])
    assert select_boxes(only_degenerate, 64, 48) == ([(0, 0, 64, 48)], "whole")
    assert Cropper(NoDetector())(image).source == "whole"


def test_detections_must_agree_in_length():
    with pytest.raises(ValueError, match="2 boxes, 1 scores"):
        Detections(torch.zeros(2, 4), torch.zeros(1), torch.zeros(2, dtype=torch.int64))


def test_evaluation_crop_settings_are_checked():
    with pytest.raises(UserError, match=r"policy=all .* is for serving"):
        CropSettings(policy="all")
    with pytest.raises(UserError, match="user_box='drawn'"):
        CropSettings(user_box="drawn")
    assert Cropper(NoDetector(), CropSettings(padding=0.1)).describe() == "none"
    assert Cropper(NoDetector(), CropSettings(padding=0.1, user_box="ground_truth")).describe() == (
        "none, user box: ground_truth, padding 0.1"
    )


class FixedBoxes(Detector):
    """Finds the same boxes in every image (counting the images it was asked about)."""

    name = "fixed"

    def __init__(self, found: Detections) -> None:
        self.found, self.seen = found, 0

    def detect(self, image: Image.Image) -> Detections:
        self.seen += 1
        return self.found


def test_cropper_crops_one_image_as_its_settings_say():
    image = Image.new("RGB", (100, 100), "white")
    cropper = Cropper(FixedBoxes(FOUND), CropSettings(padding=0.1, square=True))
    detected = cropper(image)
    assert (detected.source, detected.box, detected.image.size) == ("detected", (0, 0, 66, 55), (66, 66))
    given = cropper(image, user_box=[10, 20, 60, 90])  # the user's box beats detection, padded alike
    assert (given.source, given.box, given.image.size) == ("user", (5, 13, 65, 97), (84, 84))
    assert cropper(image, detect=False).source == "whole" and cropper(image, detect=False).image is image
    assert cropper.detects and cropper.name == "fixed"
    plain = Cropper()
    assert not plain.detects and plain.name is None and plain(image).image is image
    assert plain(image, user_box=[10, 20, 60, 90]).box == (10, 20, 60, 90)  # padding 0 by default


def test_cropper_locates_a_list_of_files_in_batches(tmp_path):
    paths = []
    for i in range(5):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (100, 100), "white").save(paths[-1])
    paths.append(str(tmp_path / "missing.png"))
    detector = FixedBoxes(FOUND)
    cropper = Cropper(detector, CropSettings(padding=0.0))
    users = [None, [1, 2, 30, 40], None, None, None, None]
    boxes = cropper.locate(paths, users, batch_size=2)
    assert detector.seen == 4  # the user's box is not detected in; the missing file is not read
    assert boxes["source"].tolist() == ["detected", "user", "detected", "detected", "detected", "unreadable"]
    assert boxes.loc[1, ["x0", "y0", "x1", "y1"]].tolist() == [1, 2, 30, 40]
    assert (boxes["width"][:5] == 100).all()
    cuts = crop_boxes(boxes)
    assert cuts[0] == (0, 0, 60, 50) and cuts[1] == (1, 2, 30, 40) and cuts[5] is None
    whole = Cropper().locate(paths[:2])
    assert whole["source"].tolist() == ["whole", "whole"] and crop_boxes(whole) == [None, None]


def test_square_crops_keep_the_whole_object_on_its_background_colour():
    image = Image.new("RGB", (100, 100), (200, 210, 220))
    image.paste((10, 20, 30), (40, 10, 60, 90))  # a tall dark object
    (region,) = crop(image, Detections.of([[35, 5, 65, 95]]), square=True)
    assert region.box == (35, 5, 65, 95) and region.image.size == (90, 90)
    assert region.image.getpixel((0, 0)) == (200, 210, 220)  # filled with the border's colour
    assert region.image.getpixel((45, 45)) == (10, 20, 30)  # the object, centred
    assert crop(image, Detections.of([[35, 5, 65, 95]]))[0].image.size == (30, 90)


def test_a_real_detector_crops_the_object_padded_and_squared():
    from visual_search.detect.foreground import ForegroundDetector

    photo = Image.new("RGB", (200, 100), "white")
    photo.paste(Image.new("RGB", (40, 20), "red"), (100, 60))  # a red 40x20 product at (100, 60)
    cropper = Cropper(ForegroundDetector(closing=0.0), CropSettings(padding=0.0, square=True))
    detected = cropper(photo)
    x0, y0, x1, y1 = detected.box
    assert detected.source == "detected" and abs(x0 - 100) <= 3 and abs(y0 - 60) <= 3
    assert abs(x1 - 140) <= 3 and abs(y1 - 80) <= 3
    assert detected.image.width == detected.image.height  # squared, so a centre crop keeps it all
