"""The query images the server was sent lately, by a digest of their bytes: a page URL names the upload it
searched (`?upload=<digest>`), so a search can be reloaded or shared while the server still holds it."""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict

from PIL import Image

from visual_search.serving.http.errors import NotFound


class Uploads:
    """At most `max_items` uploads of at most `max_bytes` in all, the least recently used dropped first."""

    def __init__(self, max_items: int = 32, max_bytes: int = 64 << 20) -> None:
        self.max_items, self.max_bytes = max_items, max_bytes
        self._held: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._bytes = 0  # held in all

    def put(self, data: bytes) -> str | None:
        """Hold `data` (a decodable image); its digest, None when nothing is kept (`max_items=0`)."""
        if self.max_items <= 0 or len(data) > self.max_bytes:
            return None
        key = hashlib.sha256(data).hexdigest()[:24]
        if key not in self._held:
            with Image.open(io.BytesIO(data)) as image:  # the header only: its format
                media_type = Image.MIME.get(image.format or "", "application/octet-stream")
            self._held[key] = (data, media_type)
            self._bytes += len(data)
        self._held.move_to_end(key)
        while len(self._held) > self.max_items or self._bytes > self.max_bytes:
            dropped, _ = self._held.popitem(last=False)[1]
            self._bytes -= len(dropped)
        return key

    def get(self, key: str) -> tuple[bytes, str]:
        """The bytes and media type of a held upload; NotFound once it is no longer held."""
        if key not in self._held:
            raise NotFound(f"upload {key!r} is no longer held by this server: upload the image again")
        self._held.move_to_end(key)
        return self._held[key]
