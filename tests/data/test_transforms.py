"""The evaluation transform: what the encoder was trained with, for ordinary images exactly, and bounded
work for images of any shape."""

from __future__ import annotations

import time

import torch
from PIL import Image
from torchvision.transforms import v2 as T

from visual_search.data.transforms import Preprocess, eval_transform

PRE = Preprocess(input_size=224, resize_size=256, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="bicubic")


def test_ordinary_images_are_resized_as_without_the_bound():
    image = Image.effect_noise((640, 400), 60).convert("RGB")
    unbounded = T.Compose(
        [
            T.ToImage(),
            T.Resize(256, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
            T.CenterCrop(224),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(PRE.mean, PRE.std),
        ]
    )
    torch.testing.assert_close(eval_transform(PRE)(image), unbounded(image), rtol=0, atol=0)


def test_a_needle_thin_image_costs_no_more_than_a_20_to_1_one():
    start = time.perf_counter()
    pixels = eval_transform(PRE)(
        Image.new("RGB", (200_000, 1), "red")
    )  # unbounded: a 51,200,000 x 256 resize
    assert pixels.shape == (3, 224, 224) and time.perf_counter() - start < 2


def test_a_large_photo_is_shrunk_first_to_about_the_same_pixels():
    photo = Image.effect_noise((600, 600), 40).convert("RGB").resize((3000, 3000), Image.Resampling.BICUBIC)
    direct = T.Compose([T.ToImage(), T.Resize(256, antialias=True), T.CenterCrop(224)])(photo).float()
    reduced = eval_transform(PRE)(photo) * 0.5 + 0.5  # undo the normalisation
    similarity = torch.nn.functional.cosine_similarity(direct.flatten() / 255, reduced.flatten(), dim=0)
    assert similarity > 0.999
