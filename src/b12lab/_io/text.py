"""A file's bytes as UTF-8, whatever its encoding, read a piece at a time.

Records are found by looking for line-end, quote and delimiter bytes, which is only right where
those characters are single ASCII bytes that no other character contains. UTF-8 is such an
encoding: a UTF-8 file is read as it is (a byte order mark dropped), and each block is checked
once it has been cut. Every other encoding is transcoded to UTF-8 as it is read, before any
cutting: in UTF-16 a line end is two bytes, and in Shift-JIS the second byte of a character
can be ``|``. A file that starts with a UTF-16 or UTF-32 byte order mark is read in that
encoding whatever ``encoding`` says, since no text in another encoding starts with those bytes.
Either way, a byte that does not decode is an error naming its line.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from b12lab._io.records import count_line_ends
from b12lab.errors import InputFileError

__all__ = ["Text", "open_text"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose mark begins it
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class Text:
    """UTF-8 bytes of a file in UTF-8; :class:`_Transcoded` serves every other encoding."""

    def __init__(self, raw: BinaryIO, head: bytes, encoding: str, name: str) -> None:
        self._raw = raw
        self._head = head
        self.encoding = encoding
        self.name = name

    def read(self, size: int) -> bytes:
        """About ``size`` more bytes; ``b""`` at the end of the file."""
        data, self._head = self._head + self._raw.read(size), b""
        return data

    @property
    def position(self) -> int:
        """Bytes of the file read so far."""
        return self._raw.tell()

    def checked(self, block: bytes, lines_before: int) -> bytes:
        """``block`` once it is known to be valid UTF-8; else an error naming its line."""
        try:
            block.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = lines_before + count_line_ends(block[: exc.start]) + 1
            raise undecodable(self.name, line, self.encoding, block) from None
        return block


class _Transcoded(Text):
    """A file in an encoding other than UTF-8, transcoded to UTF-8 as it is read."""

    def __init__(self, raw: BinaryIO, head: bytes, encoding: str, name: str) -> None:
        super().__init__(raw, head, encoding, name)
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._lines = 0
        self._started = False
        self._after_return = False

    def read(self, size: int) -> bytes:
        while True:  # a read may end inside a character, and decode to nothing yet
            data = super().read(size)
            text = self._decode(data, final=not data)
            if text or not data:
                break
        if not self._started and text:
            text, self._started = text.removeprefix("\ufeff"), True
        encoded = text.encode("utf-8")
        split = self._after_return and encoded.startswith(b"\n")  # a \r\n across two reads
        self._lines += count_line_ends(encoded) - split
        self._after_return = encoded.endswith(b"\r")
        return encoded

    def _decode(self, data: bytes, *, final: bool) -> str:
        try:
            return str(self._decoder.decode(data, final))
        except UnicodeDecodeError as exc:
            line = self._lines + _line_ends_before(exc) + 1
            raise undecodable(self.name, line, self.encoding, exc.object) from None

    def checked(self, block: bytes, lines_before: int) -> bytes:
        return block  # made as UTF-8


def open_text(raw: BinaryIO, encoding: str, name: str) -> Text:
    """``raw`` (a file opened for reading bytes) as UTF-8; ``name`` is used in messages."""
    head = raw.read(4)
    codec = _codec(head, encoding)
    if codec in ("utf-8", "utf-8-sig"):
        return Text(raw, head.removeprefix(codecs.BOM_UTF8), encoding, name)
    return _Transcoded(raw, head, codec, name)


def _codec(head: bytes, encoding: str) -> str:
    """The codec to read with: a byte order mark's, else ``encoding``'s.

    UTF-16 or UTF-32 without a byte order mark is big-endian if the file starts with a zero
    byte (the high byte of a header's first, ASCII, character), else little-endian.
    """
    detected = next((codec for bom, codec in _BOMS if head.startswith(bom)), None)
    try:
        codec = detected or codecs.lookup(encoding).name
    except LookupError:
        raise InputFileError(f"unknown encoding {encoding!r}", encoding=encoding) from None
    if codec in ("utf-16", "utf-32") and detected is None:
        return f"{codec}-be" if head.startswith(b"\0") else f"{codec}-le"
    return codec


def _line_ends_before(exc: UnicodeDecodeError) -> int:
    """Line ends in the text that decoded before the failing bytes."""
    try:
        before = exc.object[: exc.start].decode(exc.encoding, errors="replace")
    except LookupError:  # a codec that reports another name than its own
        return 0
    return count_line_ends(before.encode("utf-8"))


def undecodable(name: str, line: int, encoding: str, data: bytes = b"") -> InputFileError:
    """The error for a line that is not valid in the file's encoding; ``data`` holds it."""
    return InputFileError(
        f"{name}: line {line} is not valid {encoding}; {_advice(encoding, data)}",
        line=line,
        encoding=encoding,
    )


_FALLBACKS = ("utf-8", "cp1252", "latin-1")


def _advice(encoding: str, data: bytes) -> str:
    """Which encoding to try instead: never the one that just failed."""
    codec = codecs.lookup(encoding).name
    if b"\0" in data and not codec.startswith(("utf-16", "utf-32")):
        return "it holds NUL bytes, as UTF-16 text does: try --encoding utf-16"
    if codec == "utf-8":
        return (
            "if the file comes from a Windows or older laboratory system, try --encoding cp1252 "
            "(or latin-1)"
        )
    if codec == "cp1252":
        return (
            "cp1252 leaves five byte values undefined; try --encoding latin-1, which reads every "
            "byte (check that accented letters come out right), or utf-8"
        )
    others = [other for other in _FALLBACKS if codecs.lookup(other).name != codec]
    return f"try --encoding {', '.join(others[:-1])} or {others[-1]}"
