"""The dashboard session cookie: signed, tamper-evident, expiring, and carrying no token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from breakglass.api.auth import Role, SessionCodec

SECRET = "k" * 40


def test_an_issued_cookie_reads_back_as_the_same_token_and_csrf() -> None:
    codec = SessionCodec(SECRET)
    cookie, data = codec.issue(7)
    assert codec.read(cookie) == data
    assert data.token_id == 7 and len(data.csrf) >= 40


def test_each_session_gets_its_own_csrf_secret() -> None:
    codec = SessionCodec(SECRET)
    assert codec.issue(1)[1].csrf != codec.issue(1)[1].csrf


@pytest.mark.parametrize("position", [0, 10, -5])
def test_a_cookie_with_any_byte_changed_is_refused(position: int) -> None:
    codec = SessionCodec(SECRET)
    cookie, _ = codec.issue(1)
    flipped = "A" if cookie[position] != "A" else "B"
    tampered = (
        cookie[:position] + flipped + cookie[position + 1 :]
        if position != -5
        else (cookie[:-5] + flipped + cookie[-4:])
    )
    assert codec.read(tampered) is None


def test_a_cookie_signed_with_another_secret_is_refused() -> None:
    cookie, _ = SessionCodec("x" * 40).issue(1)
    assert SessionCodec(SECRET).read(cookie) is None


def test_a_forged_payload_signed_without_the_secret_cannot_claim_another_token() -> None:
    forged = URLSafeTimedSerializer("guess" * 8, salt="breakglass.session").dumps({"t": 1, "c": "x"})
    assert SessionCodec(SECRET).read(forged) is None


def test_an_expired_cookie_is_refused() -> None:
    codec = SessionCodec(SECRET, max_age=timedelta(seconds=-1))
    cookie, _ = codec.issue(1)
    assert codec.read(cookie) is None


def test_a_short_secret_is_rejected_up_front() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        SessionCodec("short")


def test_roles_are_ordered_and_parse_case_insensitively() -> None:
    assert Role.PEER < Role.VIEWER < Role.RESPONDER < Role.ADMIN
    assert Role.parse("Responder") is Role.RESPONDER
    with pytest.raises(ValueError, match="accepted: peer, viewer, responder, admin"):
        Role.parse("root")
