"""The synthetic data carries category by shape, not colour: a colour histogram must score clearly below
a shape feature, and not far above chance."""

from pathlib import Path

from visual_search.data.polyvore import load_polyvore
from visual_search.data.splits import SplitSpec
from visual_search.data.synthetic import SyntheticSpec, ensure_synthetic
from visual_search.evaluation.baselines import score_baseline


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
