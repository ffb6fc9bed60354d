"""Decoding images safely: one reader for every image file Fennec opens.

:func:`read_image` decodes a file to 8-bit RGB: 16-bit and float pixels are rescaled (PIL's own
``convert("RGB")`` clips them to all-white or all-black), images larger than :data:`MAX_SIDE` are shrunk
to it, and a file of more than :data:`MAX_PIXELS` pixels (a decompression bomb) is refused before it is
decoded. :func:`to_pil_rgb` accepts a path, a PIL image or a uint8 array. Every problem is one
:class:`~fennec.errors.SchemaError` naming the file, never a PIL traceback or warning.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from fennec.errors import SchemaError

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "MAX_SIDE", "MIN_SIDE", "read_image", "to_pil_rgb"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: Images whose smaller side is below this many pixels are refused (nothing to see at that size).
MIN_SIDE = 8
#: Decoded images are shrunk (aspect kept) so that their longer side is at most this: every proxy and
#: model resizes to a few hundred pixels, and a probe of 100 photos must fit in memory.
MAX_SIDE = 1024
#: Images with more pixels than this are refused before decoding (PIL's own decompression-bomb limit).
MAX_PIXELS = 89_478_485


def read_image(path: str | os.PathLike[str], *, max_side: int | None = MAX_SIDE):
    """Decode an image file to PIL RGB: bounded in size, 16-bit and float pixels rescaled to 8 bits.

    Raises :class:`SchemaError` (naming the file) for an unreadable file or one of more than
    :data:`MAX_PIXELS` pixels (a decompression bomb, or a scan too large to decode safely), never a
    PIL traceback or warning.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "image file not found", str(path))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Image.open(path) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise SchemaError(f"image {path} is {w}x{h} pixels ({w * h / 1e6:.0f} Mpx), above the "
                                      f"{MAX_PIXELS / 1e6:.0f} Mpx limit (a decompression bomb?); downscale it")
                if max_side and max(w, h) > max_side:
                    img.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
                img.load()
                pil = _to_8bit_rgb(img, path)
        for w_ in caught:
            if issubclass(w_.category, Image.DecompressionBombWarning):
                raise SchemaError(f"image {path}: {w_.message}; downscale it")
            logger.info("%s: %s", path, w_.message)
    except SchemaError:
        raise
    except Image.DecompressionBombError as exc:
        raise SchemaError(f"image {path}: refusing to decode it ({exc}); downscale it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise SchemaError(f"cannot read image {path}: {' '.join(str(exc).split())}") from exc
    if max_side and max(pil.size) > max_side:
        pil.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return pil


def _to_8bit_rgb(img, path: Path):
    """RGB, 8 bits per channel. 16-bit images are divided by 257; float images in [0, 1] multiplied by
    255; other integer or float ranges are rescaled from their min..max (PIL's own ``convert`` would clip
    them to all-white or truncate them to all-black)."""
    from PIL import Image

    if img.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return img.convert("RGB")
    arr = np.asarray(img, dtype=np.float64)
    finite = np.isfinite(arr)
    arr = np.where(finite, arr, 0.0)
    lo, hi = (float(arr[finite].min()), float(arr[finite].max())) if finite.any() else (0.0, 0.0)
    if img.mode == "F" and lo >= 0.0 and hi <= 1.0:
        scaled = arr * 255.0
    elif img.mode.startswith("I;16") or (img.mode == "I" and lo >= 0 and 255 < hi <= 65535):
        scaled = arr / 257.0
    elif lo >= 0.0 and hi <= 255.0:
        scaled = arr
    else:
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        logger.info("%s: %s pixels in %g..%g rescaled to 0..255", path, img.mode, lo, hi)
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


def to_pil_rgb(image: Any, *, name: str = "image", min_side: int = MIN_SIDE):
    """A PIL RGB image from a PIL image, a uint8 array (H, W), (H, W, 1|3|4) or a file path."""
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        pil = read_image(image)
        name = str(image)
    elif isinstance(image, Image.Image):
        pil = image.convert("RGB") if image.mode != "RGB" else image
    else:
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise SchemaError(f"{name} must be uint8 (0-255); got dtype {arr.dtype}")
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))):
            raise SchemaError(f"{name} must have shape (H, W), (H, W, 3) or (H, W, 4); got {arr.shape}")
        pil = Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")
    if min(pil.size) < min_side:
        raise SchemaError(f"{name} is {pil.size[0]}x{pil.size[1]} pixels; "
                          f"the smaller side must be at least {min_side}")
    return pil
