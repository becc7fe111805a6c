"""Access tokens, credentials in headers, passwords and roles: the pure parts of auth/."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from argon2 import PasswordHasher

from tapioca.auth.access import credential_of, credential_of_ingest
from tapioca.auth.passwords import hash_password, needs_rehash, verify_password
from tapioca.auth.roles import Role
from tapioca.auth.tokens import InvalidToken, TokenSigner, digest, looks_like_jwt
from tapioca.errors import TapiocaError

SECRET = b"s" * 64


def test_an_access_token_names_its_account_until_it_expires() -> None:
    signer = TokenSigner(SECRET, timedelta(minutes=15))
    token = signer.issue("acc_1")
    assert token.expires_in == 900
    assert looks_like_jwt(token.token)
    assert signer.verify(token.token) == "acc_1"
    old = signer.issue("acc_1", now=datetime.now(UTC) - timedelta(minutes=16))
    with pytest.raises(InvalidToken, match="ExpiredSignature"):
        signer.verify(old.token)


def test_a_token_verified_before_still_expires_on_time() -> None:
    """Verified tokens are kept, each until its own expiry: the second answer comes from
    what was kept, and the one after expiry is refused."""
    signer = TokenSigner(SECRET, timedelta(seconds=3))
    # 1 to 2 s left (a token's times are whole seconds)
    token = signer.issue("acc_2", now=datetime.now(UTC) - timedelta(seconds=1))
    assert signer.verify(token.token) == "acc_2"
    assert signer.verify(token.token) == "acc_2"
    other = TokenSigner(b"t" * 64, timedelta(minutes=5))
    with pytest.raises(InvalidToken):  # kept by one signer, not by another secret's
        other.verify(token.token)
    time.sleep(2.1)
    with pytest.raises(InvalidToken, match="ExpiredSignature"):
        signer.verify(token.token)


def _claims() -> dict[str, object]:
    now = datetime.now(UTC)
    return {"sub": "acc_1", "iss": "tapioca", "typ": "access", "iat": now,
            "exp": now + timedelta(minutes=5)}  # fmt: skip


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda: jwt.encode(_claims(), b"w" * 48, algorithm="HS256"), id="wrong key"),
        pytest.param(lambda: jwt.encode(_claims(), "", algorithm="none"), id="alg none"),
        pytest.param(lambda: jwt.encode(_claims(), SECRET, algorithm="HS512"), id="other alg"),
        pytest.param(
            lambda: jwt.encode({**_claims(), "typ": "refresh"}, SECRET, algorithm="HS256"),
            id="not an access token",
        ),
        pytest.param(
            lambda: jwt.encode({**_claims(), "iss": "elsewhere"}, SECRET, algorithm="HS256"),
            id="other issuer",
        ),
        pytest.param(
            lambda: jwt.encode(
                {k: v for k, v in _claims().items() if k != "exp"}, SECRET, algorithm="HS256"
            ),
            id="no expiry",
        ),
    ],
)
def test_forged_tokens_are_refused(forge: object) -> None:
    assert callable(forge)
    with pytest.raises(InvalidToken):
        TokenSigner(SECRET, timedelta(minutes=5)).verify(forge())


def test_a_tampered_token_is_refused() -> None:
    signer = TokenSigner(SECRET, timedelta(minutes=5))
    header, payload, signature = signer.issue("acc_1").token.split(".")
    claims = jwt.decode(signer.issue("acc_2").token, SECRET, algorithms=["HS256"],
                        issuer="tapioca")  # fmt: skip
    claims["sub"] = "acc_owner"
    forged_payload = jwt.encode(claims, b"x" * 48, algorithm="HS256").split(".")[1]
    with pytest.raises(InvalidToken, match="InvalidSignature"):
        signer.verify(f"{header}.{forged_payload}.{signature}")
    assert payload != forged_payload


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"authorization": "Bearer tpk_abc"}, "tpk_abc"),
        ({"authorization": "bearer   tpk_abc  "}, "tpk_abc"),
        ({"x-api-key": "tpk_k"}, "tpk_k"),
        ({"authorization": _basic("tpk_user")}, "tpk_user"),
        ({"authorization": _basic("", "tpk_pass")}, "tpk_pass"),
        ({"authorization": "Bearer tpk_a", "x-api-key": "tpk_b"}, "tpk_a"),
    ],
)
def test_the_credential_of_a_request(headers: dict[str, str], expected: str | None) -> None:
    assert credential_of(headers) == expected


@pytest.mark.parametrize(
    "header", ["Digest abc", "Bearer", "Basic !!!notbase64", "Basic " + "gA==", "tpk_abc"]
)
def test_a_malformed_authorization_is_a_401(header: str) -> None:
    with pytest.raises(TapiocaError) as caught:
        credential_of({"authorization": header})
    assert (caught.value.status, caught.value.code) == (401, "invalid_token")


def test_passwords_are_argon2id_and_old_parameters_are_rehashed() -> None:
    stored = hash_password("a long password")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long password")
    assert not verify_password(stored, "a long passwore")
    assert not verify_password(None, "a long password")  # no such account
    assert not needs_rehash(stored)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("x" * 12)
    assert verify_password(weak, "x" * 12)
    assert needs_rehash(weak)


def test_secrets_are_stored_as_their_sha256() -> None:
    assert digest("tpk_x") == "c70e0619b7a3fbfcf82478be15240fc29dc89cae50782cfd001cbaf6ef7ada1b"


def test_roles_are_ordered() -> None:
    assert Role.OWNER.at_least(Role.ADMIN) and Role.ADMIN.at_least(Role.VIEWER)
    assert not Role.VIEWER.at_least(Role.ADMIN)
    assert not Role.ADMIN.at_least(Role.OWNER)


K, A, B = "tpk_" + "k" * 40, "tpk_" + "a" * 40, "tpk_" + "b" * 40


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": _basic("segment-write-key")}, None),
        ({"authorization": _basic("segment-write-key"), "x-api-key": K}, K),
        ({"authorization": "Digest x", "x-api-key": K}, K),
        ({"authorization": f"Bearer {A}", "x-api-key": B}, A),
        ({"x-api-key": "site-id"}, None),
    ],
)
def test_ingest_takes_our_keys_only_wherever_they_are(
    headers: dict[str, str], expected: str | None
) -> None:
    assert credential_of_ingest(headers) == expected
