"""Safe decoding: every mode becomes RGB on white; broken files raise ImageLoadError with a reason."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visual_search.data.images import ImageLoadError, load_rgb


@pytest.mark.parametrize(
    ("mode", "fmt", "color"),
    [
        ("RGBA", "PNG", (255, 0, 0, 0)),
        ("LA", "PNG", (0, 0)),
        ("CMYK", "JPEG", (0, 255, 255, 0)),
        ("L", "PNG", 128),
    ],
)
def test_modes_become_rgb(tmp_path: Path, mode: str, fmt: str, color):
    path = tmp_path / f"x.{fmt.lower()}"
    Image.new(mode, (8, 8), color).save(path, fmt)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (8, 8)
    if mode in ("RGBA", "LA"):  # fully transparent -> white background
        assert np.asarray(image).min() == 255


def test_palette_with_transparency_and_16_bit(tmp_path: Path):
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    assert np.asarray(load_rgb(tmp_path / "p.png")).min() == 255
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(tmp_path / "i16.png")
    assert np.asarray(load_rgb(tmp_path / "i16.png")).min() == 255


def test_broken_files_raise_with_reason(tmp_path: Path):
    Image.new("RGB", (64, 64), (10, 20, 30)).save(tmp_path / "ok.jpg", quality=95)
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    for name, reason in [
        ("truncated.jpg", "cannot decode"),
        ("empty.jpg", "not an image"),
        ("text.jpg", "not an image"),
        ("gone.jpg", "file not found"),
    ]:
        with pytest.raises(ImageLoadError, match=reason):
            load_rgb(tmp_path / name)


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="too many pixels"):
        load_rgb(tmp_path / "big.png")
