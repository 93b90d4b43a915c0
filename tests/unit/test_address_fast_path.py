"""The plain-address fast path of parse_address_value gives what the general parser gives.

Every input the fast path takes must come out equal to the stdlib-based path
(``_parse_address_value``: ``email.policy.default``, then the lenient fallbacks), and the
fast path must leave everything else to it.
"""

from __future__ import annotations

import itertools
import random

import pytest

from mailgate.adapters.mime._headers import (
    _parse_address_value,
    _plain_addresses,
    parse_address_value,
)

NAMES = [
    "",
    "Ann",
    "Ann Smith",
    "Ann  Smith",
    "Ann\tSmith",
    "O'Brien",
    "ann-marie de la Cruz",
    "J. Smith",
    "José Berger",
    '"Ann Smith"',
    '"Smith, Ann"',
    '"Ann  Smith"',
    '" Ann "',
    '""',
    '"Ann \\"x\\""',
    '"=?utf-8?q?Ann?="',
    '"Ann =? x"',
    '"Ann" Smith',
    'Ann "Smith"',
    '"José"',
    '"a@b"',
    '"<x>"',
    '"Ann; Bob:"',
    '"Ann (x)"',
    '"Ann',
    '"\t"',
    "=?utf-8?q?Ann_Smith?=",
    "=?utf-8?b?Sm9zw6k=?= Berger",
    "Ann (work)",
    "a!#$%&'*+/^_`{|}~-z",
    "Ann?",
    "Ann=",
    "Ann.",
    "<",
    "Ann;",
    "Ann:",
    "Undisclosed:",
    "@",
    "Ann\\ Smith",
    "\x00",
    "Ann\udcff",
    "x" * 300,
]
ADDRESSES = [
    "a@b",
    "ann@example.com",
    "ann.smith+tag@mail.example.co.uk",
    "a!#$%&'*+/^_`{|}~-z@x-y.z",
    "ANN@EXAMPLE.COM",
    "ann..smith@example.com",
    ".ann@example.com",
    "ann.@example.com",
    "ann@example..com",
    "ann@-example.com",
    "ann@example.com.",
    "ann@[127.0.0.1]",
    '"ann smith"@example.com',
    "ann@@example.com",
    "ann@",
    "@example.com",
    "ann",
    "ann@exa mple.com",
    "anné@example.com",
    "ann=x@example.com",
    "ann?x@example.com",
    "ann@ex_ample.com",
    "",
]
SHAPES = [
    "{name} <{addr}>",
    "{name}<{addr}>",
    "<{addr}>",
    "{addr}",
    " {name}  <{addr}> ",
    "{addr} ",
]
HOSTILE = [
    "",
    ",",
    " , ",
    "a@b,",
    ",a@b",
    "a@b,,c@d",
    "a@b, ,c@d",
    "<<<@>>",
    "undisclosed-recipients:;",
    "Group: a@b, c@d;",
    "a@b (Ann)",
    "Ann <a@b> (comment)",
    "Ann <a@b",
    "Ann a@b>",
    "<a@b> Ann",
    "a@b c@d",
    "Ann <a@b> <c@d>",
    "Ann <<a@b>>",
    "\tAnn <a@b>\t",
    "Ann\r\n <a@b>",
    "Ann <a@b>\r\n, Bob <c@d>",
    "Ann <a@b>; Bob <c@d>",
    "=?utf-8?q?=41nn?= <a@b>",
    "Ann <a@b>" * 50,
    ", ".join(f"User{i} <user{i}@example.com>" for i in range(200)),
    "a" * 70_000 + "@b",
]


def inputs() -> list[str]:
    found = list(HOSTILE)
    for shape, name, addr in itertools.product(SHAPES, NAMES, ADDRESSES):
        found.append(shape.format(name=name, addr=addr))
    rng = random.Random(15)
    singles = list(found)
    plain = [raw for raw in singles if _plain_addresses(raw) is not None]
    for pool in (singles, plain):
        for _ in range(2000):  # lists of two to four items, with varied separators
            items = rng.sample(pool, rng.randint(2, 4))
            found.append(rng.choice([",", ", ", " ,", " , ", ",\t", ",\r\n "]).join(items))
    return found


@pytest.mark.parametrize("header", ["From", "To", "Cc", "Reply-To"])
def test_the_fast_path_gives_what_the_parser_gives(header: str) -> None:
    taken = 0
    for raw in inputs():
        fast = _plain_addresses(raw)
        if fast is None:
            continue
        taken += 1
        assert fast == _parse_address_value(header, raw), raw
        assert parse_address_value(header, raw) == fast, raw
    assert taken > 1000  # the common shapes do take the fast path


@pytest.mark.parametrize(
    "raw",
    [
        '"Ann \\"x\\"" <a@b>',
        "=?utf-8?q?Ann?= <a@b>",
        "Ann (work) <a@b>",
        "Group: a@b;",
        "José <a@b>",
        "a@b,",
        "J. Smith <a@b>",
        "ann@[127.0.0.1]",
    ],
)
def test_what_the_fast_path_leaves_to_the_parser(raw: str) -> None:
    assert _plain_addresses(raw) is None
    assert parse_address_value("To", raw) == _parse_address_value("To", raw)
