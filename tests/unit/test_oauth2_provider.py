"""gateway.oauth2.provider: PKCE and what an id_token says (pure parts)."""

from __future__ import annotations

import base64
import hashlib
import json

from mailgate.gateway.oauth2.provider import authorization_url, id_token_claims, pkce_pair


def test_pkce_s256_challenge_is_the_hash_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128  # RFC 7636 section 4.1
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pkce_pair()[0] != verifier


def _jwt(claims: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2lnbmF0dXJl"


def test_id_token_claims() -> None:
    assert id_token_claims(_jwt({"email": "a@example.org"})) == {"email": "a@example.org"}
    assert id_token_claims(None) == {}
    assert id_token_claims("not-a-jwt") == {}
    assert id_token_claims("a.!!!.c") == {}
    assert id_token_claims(_jwt(["a list"])) == {}


def test_authorization_url_keeps_a_query_the_endpoint_has() -> None:
    assert authorization_url("https://p.example/auth", {"a": "b c"}) == (
        "https://p.example/auth?a=b+c"
    )
    assert authorization_url("https://p.example/auth?tenant=x", {"a": "1"}) == (
        "https://p.example/auth?tenant=x&a=1"
    )
