"""The server's store of recent uploads: bounded by count and bytes, least recently used dropped first."""

import io

import pytest
from PIL import Image

from visual_search.serving.http.errors import NotFound
from visual_search.serving.uploads import Uploads


def png(seed: int, size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (seed, 255 - seed, 7)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_keep_the_most_recently_used_within_their_bytes_and_count():
    images = [png(seed) for seed in range(4)]
    uploads = Uploads(max_items=3, max_bytes=3 * max(map(len, images)))
    keys = [uploads.put(image) for image in images[:3]]
    assert uploads.get(keys[0]) == (images[0], "image/png")  # used: now the most recent
    assert uploads.put(images[0]) == keys[0]  # the same bytes: held once
    keys.append(uploads.put(images[3]))  # a fourth: the least recently used (the second) goes
    with pytest.raises(NotFound, match="no longer held"):
        uploads.get(keys[1])
    assert [uploads.get(key)[0] for key in (keys[0], keys[2], keys[3])] == [images[0], images[2], images[3]]
    small = Uploads(max_items=10, max_bytes=len(images[0]) + len(images[1]))
    first, second, third = (small.put(image) for image in images[:3])  # bytes, not count, bind here
    with pytest.raises(NotFound):
        small.get(first)
    assert small.get(second)[0] == images[1] and small.get(third)[0] == images[2]
    assert Uploads(max_items=0).put(images[0]) is None and Uploads(max_bytes=1).put(images[0]) is None
