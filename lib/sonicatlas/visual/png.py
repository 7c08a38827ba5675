"""Images as PNG bytes: unfiltered rows, deflated at zlib level 1.

Pillow's PNG writer tries several row filters and keeps the best per row, which costs as much
as the compression itself; on the maps (flat background, a few hundred to a few thousand
colours) unfiltered rows also compress better than filtered ones. Any PNG reader decodes the
result to the same pixels (filter type 0 is part of every PNG decoder).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {"L": 0, "RGB": 2, "RGBA": 6}  # PNG colour type of each Pillow mode, 8 bits


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG.

    Parameters
    ----------
    image : PIL.Image.Image
        Modes ``L``, ``RGB`` and ``RGBA`` are written here; any other goes through Pillow.

    Returns
    -------
    bytes
        One ``IHDR``, one ``IDAT`` (every row with filter type 0) and ``IEND``.
    """
    if image.mode not in _COLOR_TYPES:
        out = io.BytesIO()
        image.save(out, format="PNG", compress_level=3)
        return out.getvalue()
    pixels = np.asarray(image, dtype=np.uint8)
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # a 0 byte leads each row
    rows[:, 1:] = pixels.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[image.mode], 0, 0, 0)
    return b"".join([_SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib.compress(rows, 1)), _chunk(b"IEND", b"")])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
