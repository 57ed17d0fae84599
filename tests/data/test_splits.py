"""Split protocols: the seed's per-category gallery/query split, validation carving, explicit columns."""

import pandas as pd
import pytest

from visual_search.data.splits import (
    SplitSpec,
    carve_val,
    column_protocol,
    gallery_query_split,
    seed_protocol,
)
from visual_search.errors import UserError


def labels_of(sizes: dict[str, int]) -> pd.Series:
    ids = [f"{cat}-{i:04d}" for cat, n in sizes.items() for i in range(n)]
    return pd.Series([i.split("-")[0] for i in ids], index=pd.Index(ids, name="item_id"))


def test_seed_split_sizes_per_category():
    labels = labels_of({"a": 150, "b": 100, "c": 5, "d": 1})
    splits = gallery_query_split(labels, SplitSpec())
    gallery, query = labels[splits["gallery"]], labels[splits["query"]]
    # at most 100 kept per category, first 80% (rounded down) to the gallery
    assert gallery.value_counts().to_dict() == {"a": 80, "b": 80, "c": 4}
    assert query.value_counts().to_dict() == {"a": 20, "b": 20, "c": 1, "d": 1}
    assert not set(splits["gallery"]) & set(splits["query"])


def test_seed_split_is_deterministic_and_independent_of_row_order():
    labels = labels_of({"a": 40, "b": 30})
    first = gallery_query_split(labels, SplitSpec())
    shuffled = gallery_query_split(labels.sample(frac=1.0, random_state=3), SplitSpec())
    assert list(first["query"]) == list(shuffled["query"])
    other_seed = gallery_query_split(labels, SplitSpec(seed=7))
    assert set(first["query"]) != set(other_seed["query"])


def test_training_items_exclude_queries_and_val_is_carved_from_them():
    labels = labels_of({"a": 150, "b": 30})
    splits = seed_protocol(labels, SplitSpec(val_fraction=0.1))
    train, val, query = set(splits["train"]), set(splits["val"]), set(splits["query"])
    assert not train & query and not val & query and not train & val
    # training = everything not in the query set, part of it moved to val
    assert train | val == set(labels.index) - query
    assert labels[list(val)].value_counts().to_dict() == {"a": 13, "b": 2}


def test_train_may_also_exclude_the_gallery():
    labels = labels_of({"a": 20})
    splits = seed_protocol(labels, SplitSpec(train_excludes=("gallery", "query"), val_fraction=0))
    assert len(splits["train"]) == 0 and len(splits["val"]) == 0


def test_carve_val_leaves_singletons_in_train():
    labels = labels_of({"a": 1, "b": 10})
    out = carve_val(pd.Index(labels.index), labels, SplitSpec(val_fraction=0.2))
    assert labels[out["val"]].value_counts().to_dict() == {"b": 2}
    assert "a-0000" in out["train"]


def test_column_protocol_reads_names_and_carves_missing_val():
    labels = labels_of({"a": 6})
    column = pd.Series(["train", "TRAIN ", "train", "gallery", "query", "Valid"], index=labels.index)
    splits = column_protocol(labels, column, SplitSpec())
    assert list(splits["val"]) == ["a-0005"] and list(splits["query"]) == ["a-0004"]
    no_val = column_protocol(labels, column.replace({"Valid": "train"}), SplitSpec(val_fraction=0.25))
    assert len(no_val["val"]) == 1 and len(no_val["train"]) == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [("protocol", "random"), ("gallery_fraction", 1.0), ("val_fraction", -0.1), ("max_per_category", 1)],
)
def test_bad_split_settings_name_the_field(field, value):
    with pytest.raises(UserError, match=field):
        SplitSpec(**{field: value})
