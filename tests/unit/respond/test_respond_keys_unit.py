"""Guardian keys: from an encrypted keystore or a variable, registered with the redactor, never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr

from breakglass.config.playbooks import GuardianKeyConfig
from breakglass.errors import ResponseError
from breakglass.logs import Redactor
from breakglass.respond import LocalSigner, load_guardian


def test_a_keystore_key_is_decrypted_and_registered_with_the_redactor(tmp_path: Path) -> None:
    account = Account.create()
    key = bytes(account.key).hex()
    (tmp_path / "guardian.json").write_text(
        json.dumps(Account.encrypt(account.key, "p4ss-W0rd", iterations=2))
    )
    redactor = Redactor()
    signer = load_guardian(
        GuardianKeyConfig(keystore="guardian.json", password=SecretStr("p4ss-W0rd")), tmp_path, redactor
    )
    assert signer.address == account.address and repr(signer) == f"LocalSigner({account.address})"
    assert (
        redactor.text(f"k={key} K=0x{key.upper()} pw=p4ss-W0rd")
        == "k=[redacted] K=0x[redacted] pw=[redacted]"
    )


def test_a_wrong_password_or_a_missing_variable_is_an_error_without_the_secret(tmp_path: Path) -> None:
    account = Account.create()
    (tmp_path / "g.json").write_text(json.dumps(Account.encrypt(account.key, "R1ght-pass", iterations=2)))
    with pytest.raises(ResponseError, match="does not decrypt") as wrong:
        load_guardian(
            GuardianKeyConfig(keystore="g.json", password=SecretStr("Wr0ng-pass")), tmp_path, Redactor()
        )
    assert "Wr0ng-pass" not in str(wrong.value) and wrong.value.__cause__ is None
    with pytest.raises(ResponseError, match="variable BG_NOPE is not set"):
        load_guardian(GuardianKeyConfig(env="BG_NOPE"), tmp_path, Redactor(), environ={})
    with pytest.raises(ResponseError, match="not a valid") as bad:
        LocalSigner.from_key("0x" + "zz" * 32, Redactor())
    assert "zz" not in str(bad.value) and bad.value.__cause__ is None and bad.value.__suppress_context__


def test_a_hash_signature_recovers_to_the_signer() -> None:
    signer = LocalSigner(Account.create())
    digest = bytes(range(32))
    signature = signer.sign_hash(digest)
    assert len(signature) == 65 and signature[64] in (27, 28)
    from eth_keys import keys

    v = signature[64] - 27
    public = keys.Signature(signature[:64] + bytes([v])).recover_public_key_from_msg_hash(digest)
    assert public.to_checksum_address() == signer.address
