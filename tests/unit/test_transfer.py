"""Unit tests for adapters.transfer: chunked Content-Transfer-Encoding decoders (RFC 2045 §6)."""

from __future__ import annotations

import base64
import binascii
import quopri
import random
from collections.abc import Iterator

import pytest

from mailgate.adapters.transfer import make_decoder

SEED = 20240611
SIZES = [0, 1, 2, 3, 4, 5, 57, 58, 75, 76, 77, 300, 4095, 65536, 1 << 20]


def chunked(data: bytes, rng: random.Random, max_chunk: int) -> Iterator[bytes]:
    """``data`` cut at random places; empty chunks included now and then."""
    pos = 0
    while pos < len(data):
        size = rng.randint(0, max_chunk)
        yield data[pos : pos + size]
        pos += size


def run(encoding: str | None, data: bytes, chunks: Iterator[bytes] | list[bytes]) -> bytes:
    decode = make_decoder(encoding)
    out = [decode(chunk, False) for chunk in chunks]
    out.append(decode(b"", True))
    got = b"".join(out)
    assert isinstance(got, bytes)
    return got


def run_final_on_last(encoding: str, chunks: list[bytes]) -> bytes:
    """The last data chunk itself carries final=True."""
    decode = make_decoder(encoding)
    if not chunks:
        return decode(b"", True)
    return b"".join(decode(c, i == len(chunks) - 1) for i, c in enumerate(chunks))


def payload(rng: random.Random, size: int) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:
        return rng.randbytes(size)
    if kind == 1:  # text-like: long lines, trailing spaces, "=" and CR/LF mixes
        alphabet = b"abc xyz=\t\r\n.-\xc3\xa9"
        return bytes(rng.choice(alphabet) for _ in range(size))
    return (b"Gr\xc3\xbc\xc3\x9fe =3D  \r\n" * (size // 16 + 1))[:size]


def encodings(data: bytes, rng: random.Random) -> dict[str, bytes]:
    b64_mime = base64.encodebytes(data)  # 76-char lines with LF
    return {
        "b64-flat": base64.b64encode(data),
        "b64-lf": b64_mime,
        "b64-crlf": b64_mime.replace(b"\n", b"\r\n"),
        "b64-unpadded": base64.b64encode(data).rstrip(b"="),
        "qp-lf": quopri.encodestring(data),
        # CRLF line ends (as IMAP delivers them); bare CRs in the payload would make "=\r\r\n"
        "qp-crlf": quopri.encodestring(data.replace(b"\r", b"")).replace(b"\n", b"\r\n"),
        "qp-tabs": binascii.b2a_qp(data, quotetabs=True),
        "qp-lower": _lower_hex(quopri.encodestring(data)),
    }


def _lower_hex(encoded: bytes) -> bytes:
    """Lower-case the hex digits of "=XX" escapes (RFC 2045 §6.7 says decoders take both)."""
    out = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] == 0x3D and i + 2 < len(encoded) and encoded[i + 1] not in b"\r\n":
            out += encoded[i : i + 3].lower()
            i += 3
        else:
            out.append(encoded[i])
            i += 1
    return bytes(out)


def reference(name: str, encoded: bytes) -> bytes:
    if name.startswith("b64"):
        padded = encoded + b"=" * (-len(encoded.replace(b"\r\n", b"").replace(b"\n", b"")) % 4)
        return base64.b64decode(padded)
    return quopri.decodestring(encoded, header=False)


def cases() -> Iterator[tuple[str, bytes, bytes]]:
    rng = random.Random(SEED)
    for size in SIZES:
        data = payload(rng, size)
        for name, encoded in encodings(data, rng).items():
            yield name, data, encoded


CASES = list(cases())


@pytest.mark.parametrize(("name", "data", "encoded"), CASES, ids=[c[0] for c in CASES])
def test_random_chunkings_match_stdlib(name: str, data: bytes, encoded: bytes) -> None:
    """Several hundred chunkings in all: each case is cut many ways, boundaries anywhere."""
    rng = random.Random(f"{SEED}-{name}-{len(data)}")
    encoding = "base64" if name.startswith("b64") else "quoted-printable"
    expected = reference(name, encoded)
    if encoding == "base64":
        assert expected == data
    else:  # bare CR and LF in the payload are line breaks to QP (RFC 2045 §6.7 rule 4)
        assert expected.replace(b"\r", b"") == data.replace(b"\r", b"")
    assert run(encoding, encoded, [encoded]) == expected
    rounds = 3 if len(encoded) > 100_000 else 8
    for _ in range(rounds):
        max_chunk = rng.choice([1, 2, 3, 5, 7, 64, 1000, 70_000])
        if len(encoded) > 20_000 and max_chunk < 1000:
            max_chunk = 997  # keep the big cases fast; tiny chunks are covered on the rest
        chunks = list(chunked(encoded, rng, max_chunk))
        assert run(encoding, encoded, chunks) == expected
        assert run_final_on_last(encoding, chunks) == expected


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_every_single_cut_point(encoding: str) -> None:
    rng = random.Random(SEED)
    data = payload(rng, 200) + bytes(range(256))
    encoded = (
        base64.encodebytes(data).replace(b"\n", b"\r\n")
        if encoding == "base64"
        else quopri.encodestring(data.replace(b"\r", b"")).replace(b"\n", b"\r\n")
    )
    expected = data if encoding == "base64" else quopri.decodestring(encoded)
    for cut in range(len(encoded) + 1):
        assert run(encoding, encoded, [encoded[:cut], encoded[cut:]]) == expected
    for a in range(0, len(encoded), 7):
        for b in range(a, min(a + 9, len(encoded)) + 1):
            parts = [encoded[:a], encoded[a:b], encoded[b:]]
            assert run(encoding, encoded, parts) == expected


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (b"=41=42\r\n", b"AB\r\n"),
        (b"=4a=4B=e9", b"JK\xe9"),
        (b"soft=\r\nbreak=\nhere", b"softbreakhere"),
        (b"=", b""),  # a soft break at the very end
        (b"end=\r", b"end"),
        (b"a=ZZb", b"a=ZZb"),  # invalid escapes stay as they are
        (b"a=4", b"a=4"),
        (b"a=4G", b"a=4G"),
        (b"a==41", b"a=A"),
        (b"a=\rb\n", b"a=\rb\n"),
        (b"a= \r\nb", b"a= \r\nb"),
        (b"x=\r\n=\r\ny", b"xy"),
        (b"", b""),
    ],
)
def test_quoted_printable_rules(encoded: bytes, expected: bytes) -> None:
    for cut in range(len(encoded) + 1):
        assert run("quoted-printable", encoded, [encoded[:cut], encoded[cut:]]) == expected
    for cut in range(len(encoded) + 1):
        assert run_final_on_last("quoted-printable", [encoded[:cut], encoded[cut:]]) == expected


def test_quoted_printable_split_after_equals_and_cr() -> None:
    decode = make_decoder("quoted-printable")
    assert decode(b"abc=", False) == b"abc"
    assert decode(b"\r", False) == b""
    assert decode(b"\ndef=C", False) == b"def"
    assert decode(b"3=", False) == b"\xc3"
    assert decode(b"A9", False) == b"\xa9"
    assert decode(b"", True) == b""


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (b"YWJj\r\nZGVm\r\n", b"abcdef"),
        (b"YW Jj ZG\tVm", b"abcdef"),
        (b"YWJjZA", b"abcd"),  # missing padding
        (b"YWJjZGU", b"abcde"),
        (b"YWJjZA==", b"abcd"),
        (b"YWJjZA===", b"abcd"),
        (b"YW*Jj!Z?A=\x00=", b"abcd"),  # junk outside the alphabet is skipped
        (b"YWJjZ", b"abc"),  # a dangling sextet holds no whole octet
        (b"YQ==Yg==", b"ab"),  # concatenated encodings
        (b"", b""),
        (b"====", b""),
        (b"\r\n", b""),
    ],
)
def test_base64_leniency(encoded: bytes, expected: bytes) -> None:
    for cut in range(len(encoded) + 1):
        assert run("base64", encoded, [encoded[:cut], encoded[cut:]]) == expected
        assert run_final_on_last("base64", [encoded[:cut], encoded[cut:]]) == expected


def test_base64_split_mid_quartet_and_mid_crlf() -> None:
    decode = make_decoder("base64")
    assert decode(b"YW", False) == b""
    assert decode(b"Jj\r", False) == b"abc"
    assert decode(b"\nZG", False) == b""
    assert decode(b"Vm\r\nZw", False) == b"def"
    assert decode(b"", True) == b"g"


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_garbage_input_is_chunk_invariant(encoding: str) -> None:
    """Whatever the input, the output does not depend on where it was cut."""
    rng = random.Random(SEED)
    alphabet = b"=\r\n \tA9aFgz+/\x00\xff="
    for _ in range(300):
        encoded = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        whole = run(encoding, encoded, [encoded])
        for _ in range(5):
            assert run(encoding, encoded, list(chunked(encoded, rng, 4))) == whole


def test_quoted_printable_matches_stdlib_on_valid_escapes() -> None:
    """Without "==" or a stray "=\\r" (where binascii.a2b_qp has quirks) it is a2b_qp."""
    rng = random.Random(SEED + 1)
    alphabet = b"=\r\nA9aFgz \t\x00\xff"
    checked = 0
    for _ in range(2000):
        encoded = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        probe = encoded.replace(b"=\r\n", b"")
        if b"==" in encoded or b"=\r" in probe:
            continue
        checked += 1
        assert run("quoted-printable", encoded, list(chunked(encoded, rng, 3))) == (
            binascii.a2b_qp(encoded, header=False)
        )
    assert checked > 500


@pytest.mark.parametrize("encoding", [None, "", "7bit", "8BIT", "binary", " Binary ", "x-uue"])
def test_identity(encoding: str | None) -> None:
    decode = make_decoder(encoding)
    assert decode(b"=41 YQ==", False) == b"=41 YQ=="
    assert decode(b"\r\n", True) == b"\r\n"
    assert decode(b"", True) == b""


def test_names_are_case_insensitive_and_decoders_independent() -> None:
    first = make_decoder(" BASE64 ")
    second = make_decoder("Base64")
    assert first(b"YW", False) == b""
    assert second(b"Zm9v", True) == b"foo"
    assert first(b"Jj", True) == b"abc"
    assert make_decoder("Quoted-Printable")(b"=41", True) == b"A"


def test_accepts_bytearray_and_memoryview() -> None:
    decode = make_decoder("base64")
    assert decode(bytearray(b"YW"), False) + decode(memoryview(b"Jj"), True) == b"abc"  # type: ignore[arg-type]
    qp = make_decoder("quoted-printable")
    assert qp(bytearray(b"=4"), False) + qp(memoryview(b"1"), True) == b"A"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (b"=" * 5000, b"=" * 4999),
        (b"=\r" * 3000, b"=\r" * 2999),
        (b"=41" * 3000 + b"=", b"A" * 3000),
        (b"x" * 50_000 + b"=\r\n" + b"y", b"x" * 50_000 + b"y"),
    ],
)
def test_quoted_printable_long_runs(encoded: bytes, expected: bytes) -> None:
    """Runs of "=" and lines without breaks are cut where it is safe, without recursion."""
    for size in (1, 2, 3, 1000, 4096):
        chunks = [encoded[i : i + size] for i in range(0, len(encoded), size)]
        assert run("quoted-printable", encoded, chunks) == expected
