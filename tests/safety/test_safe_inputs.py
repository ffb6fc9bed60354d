"""Bad images and class-names files: one clear line naming the file, pixels converted correctly."""

from __future__ import annotations

import json
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image
from safety_helpers import run_cli

from fennec.data.images import MAX_PIXELS, MAX_SIDE, read_image
from fennec.data.inputs import TaskInput
from fennec.errors import SchemaError


def png_bomb(path, side=20_000):
    """A real, decodable 1-bit PNG of side x side black pixels: ~50 KB on disk, 400 Mpx decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def folder(tmp_path, odd_file):
    root = tmp_path / "task"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(root / cls / "ok.png")
    odd_file(root / "dog" / "odd.png")
    return root


def test_a_decompression_bomb_is_one_clear_error(tmp_path, capsys):
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PIL warning either
        with pytest.raises(SchemaError, match=rf"^image {bomb}: refusing to decode it \(Image size \(400000000 "
                                              r"pixels\) exceeds limit .*\); downscale it$"):
            read_image(bomb)
    root = folder(tmp_path, png_bomb)
    code, _, err = run_cli(["btune", "--out", tmp_path / "run", "--target", "efficientnet-lite0", "--baseline",
                            "--data", root], capsys)
    assert code == 1
    assert err.startswith(f"error: image {root}/dog/odd.png: refusing to decode it (Image size (400000000 pixels)")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_image_just_above_the_pixel_limit_is_refused_without_a_warning(tmp_path):
    side = int(MAX_PIXELS**0.5) + 10
    path = png_bomb(tmp_path / "big.png", side=side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SchemaError, match=rf"^image {path} is {side}x{side} pixels \(90 Mpx\), above the 89 Mpx "
                                              r"limit \(a decompression bomb\?\); downscale it$"):
            read_image(path)


def test_a_large_photo_becomes_a_bounded_thumbnail(tmp_path):
    path = tmp_path / "wide.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1500, 3000, 3), dtype=np.uint8)).save(path)
    img = read_image(path)
    assert img.mode == "RGB" and img.size == (MAX_SIDE, MAX_SIDE // 2)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    path = tmp_path / "g16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    got = np.asarray(read_image(path))
    np.testing.assert_array_equal(got[..., 0], np.rint(ramp / 257.0).astype(np.uint8))
    assert (got[..., 0] == got[..., 2]).all() and got.max() == 255 and got.min() == 0 and np.unique(got).size > 200


@pytest.mark.parametrize(("values", "expected"), [
    (np.linspace(0.0, 1.0, 256, dtype=np.float32), np.arange(256)),        # [0, 1] -> x 255
    (np.linspace(-3.0, 5.0, 256, dtype=np.float32), np.arange(256)),       # other range -> min..max
])
def test_float_tiff_is_converted(tmp_path, values, expected):
    path = tmp_path / "f.tif"
    Image.fromarray(np.tile(values, (16, 1))).save(path)
    got = np.asarray(read_image(path))[0, :, 1]
    np.testing.assert_array_equal(got, expected)


def test_a_corrupt_image_names_the_file(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(SchemaError, match=rf"^cannot read image {path}: "):
        read_image(path)


# ---------------------------------------------------------------------------------------------- class names
def test_utf16_class_names_with_a_bom_are_read(tmp_path):
    path = tmp_path / "pets.txt"
    path.write_text("tabby cat\ngolden retriever\nperroquet à collier\n", encoding="utf-16")
    assert TaskInput.from_classnames_file(path).class_names == ["tabby cat", "golden retriever",
                                                                 "perroquet à collier"]


def test_utf16_class_names_without_a_bom_are_a_clear_error(tmp_path):
    path = tmp_path / "pets.txt"
    path.write_bytes("tabby cat\ngolden retriever\n".encode("utf-16-le"))
    with pytest.raises(SchemaError, match=rf"^{path}: holds NUL characters, so it is not UTF-8 text \(UTF-16 without "
                                          r"a byte-order mark\?\); save it as UTF-8$"):
        TaskInput.from_classnames_file(path)
    path.write_bytes(b"\xff\xfe\x00\xd8cat")  # a BOM then an unpaired surrogate
    with pytest.raises(SchemaError, match=rf"^{path}: not UTF-8 text"):
        TaskInput.from_classnames_file(path)


@pytest.mark.parametrize(("content", "message"), [
    ({"0": "cat", "1": "dog"}, "a JSON class-names file must be a list of strings in label order; got a JSON dict"),
    (["cat", 3, "dog"], "item 1 of the JSON list is not a string (int 3); class names are strings"),
    (["cat", None], "item 1 of the JSON list is not a string (null); class names are strings"),
    (["cat", ["dog"]], "item 1 of the JSON list is not a string (list ['dog']); class names are strings"),
])
def test_json_class_names_must_be_a_list_of_strings(tmp_path, content, message):
    path = tmp_path / "names.json"
    path.write_text(json.dumps(content))
    with pytest.raises(SchemaError) as err:
        TaskInput.from_classnames_file(path)
    assert str(err.value) == f"{path}: {message}"
