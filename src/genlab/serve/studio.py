"""The studio's files (one page, plain HTML/CSS/JS, shipped in the package) and the one thing it asks the server
to read for it: the settings inside a genlab PNG.

A dropped PNG is read for its text chunks only (tEXt, and uncompressed iTXt), walking the chunk list by hand:
its pixels are never decoded, so a crafted image cannot cost more than reading its bytes once.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from genlab.errors import GenlabError

FILES = Path(__file__).with_name("studio")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_text(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG, {keyword: text}; a file that is not a PNG is a one-line error."""
    if not data.startswith(PNG_SIGNATURE):
        raise GenlabError("this is not a PNG file; drop a PNG that genlab made")
    texts, at = {}, len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        if len(body) < length:
            raise GenlabError("the PNG is cut short; drop the whole file")
        if zlib.crc32(kind + body) != struct.unpack(">I", data[at + 8 + length : at + 12 + length] or b"\0" * 4)[0]:
            raise GenlabError(f"the PNG's {kind.decode('latin-1')!r} chunk is damaged (its checksum is wrong)")
        if kind == b"tEXt" and b"\0" in body:
            key, text = body.split(b"\0", 1)
            texts[key.decode("latin-1")] = text.decode("latin-1")
        elif kind == b"iTXt" and body.count(b"\0") >= 4:
            key, rest = body.split(b"\0", 1)
            compressed, rest = rest[0], rest[2:]
            _language, _translated, text = rest.split(b"\0", 2)
            if not compressed:
                texts[key.decode("latin-1")] = text.decode("utf-8", errors="replace")
        elif kind == b"IEND":
            break
        at += 12 + length
    return texts


def png_settings(data: bytes) -> dict:
    """What made a genlab PNG (its provenance record) and all its text chunks."""
    texts = png_text(data)
    if "genlab" not in texts:
        raise GenlabError("this PNG has no genlab settings in it (genlab keeps them in a text chunk named 'genlab'; "
                          "an editor that re-saved the image may have dropped it)")
    try:
        settings = json.loads(texts["genlab"])
    except json.JSONDecodeError:
        raise GenlabError("the PNG's genlab settings are not valid JSON; it was changed after genlab wrote it"
                          ) from None
    if not isinstance(settings, dict):
        raise GenlabError("the PNG's genlab settings are not a record of settings")
    return {"settings": settings, "text": texts}
