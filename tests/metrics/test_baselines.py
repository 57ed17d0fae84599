"""The synthetic data carries category by shape, not colour: a colour histogram must score clearly below
a shape feature, and not far above chance."""

from pathlib import Path

import numpy as np
from PIL import Image

from visual_search.data.polyvore import load_polyvore
from visual_search.data.splits import SplitSpec
from visual_search.data.synthetic import SyntheticSpec, ensure_synthetic
from visual_search.metrics.baselines import raw_pixels, score_baseline


def test_colour_histogram_scores_clearly_below_shape(tmp_path: Path):
    spec = SyntheticSpec(
        num_categories=20, items_per_category=25, image_size=64, num_outfits=10, num_scenes=2
    )
    table = load_polyvore(ensure_synthetic(spec, tmp_path), SplitSpec())
    gallery, query = table.split("gallery"), table.split("query")
    colour = score_baseline(gallery, query, "color_histogram")
    shape = score_baseline(gallery, query, "silhouette")
    chance = 1 / 20
    assert shape > 2 * colour, (colour, shape)
    assert colour < 3 * chance, (colour, chance)


def test_raw_pixels_are_a_centred_unit_thumbnail():
    pattern = np.zeros((32, 32, 3), dtype=np.uint8)
    pattern[:16] = 100
    darker, brighter = Image.fromarray(pattern), Image.fromarray(pattern + 50)
    vector = raw_pixels(darker)
    assert vector.shape == (16 * 16 * 3,) and np.isclose(np.linalg.norm(vector), 1)
    np.testing.assert_allclose(vector, raw_pixels(brighter), atol=1e-6)  # a uniform shift is centred away
    assert raw_pixels(Image.fromarray(pattern[::-1].copy())) @ vector < -0.99  # upside down: opposite
