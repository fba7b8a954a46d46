"""The guardian key outside breakglass: a remote JSON-RPC signer (Web3Signer's and Clef's
``eth_signTransaction``) and an AWS KMS secp256k1 key (moto's KMS server as AWS), each sending a real
pause on anvil through the responder as ``build_responder`` wires it from configuration.

The signer server is a real one in its own process (``_SIGNER``: an HTTP JSON-RPC server holding the
key); the responder is configured with its URL and the address only, and never reads the key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from respond_support import PAUSE_ONLY, Venue, finding, write_config

from breakglass.bus import InProcessBus
from breakglass.config import load_config
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.logs import Redactor
from breakglass.respond import ActionStep, build_responder
from breakglass.respond.kms import KmsSigner, address_of_public_key
from breakglass.respond.remotesigner import RemoteSigner
from breakglass.store.migrate import upgrade_async

pytestmark = pytest.mark.node

HERE = Path(__file__).resolve().parent
_SIGNER = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from eth_account import Account

account = Account.from_key(os.environ.pop("SIGNER_KEY"))
token = os.environ["SIGNER_TOKEN"]

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/?token=" + token:
            self.send_response(401); self.end_headers(); return
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if body["method"] == "eth_accounts":
            result = [account.address]
        elif body["method"] == "eth_signTransaction":
            tx = dict(body["params"][0])
            assert tx.pop("from").lower() == account.address.lower()
            for name in ("gas", "maxFeePerGas", "maxPriorityFeePerGas", "value", "nonce", "chainId", "type"):
                tx[name] = int(tx[name], 16)
            result = "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()
        else:
            result = None
        out = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out))); self.end_headers(); self.wfile.write(out)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def remote_signer(venue: Venue) -> Iterator[str]:
    """A signer process holding the venue's guardian key; yields its URL (with a token in it)."""
    env = {**os.environ, "SIGNER_KEY": venue.guardian_key, "SIGNER_TOKEN": "t0ken-in-the-url"}
    process = subprocess.Popen([sys.executable, "-c", _SIGNER], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/?token=t0ken-in-the-url"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def kms_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's KMS server (``kms_standin.py``) on a free port, with throwaway credentials."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "kms_standin.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/moto-api/", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto's KMS server did not start")
                time.sleep(0.1)  # polling a condition: the port accepting
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _remote_config(folder: Path, url: str, address: str) -> Path:
    path = write_config(folder, PAUSE_ONLY)
    text = path.read_text(encoding="utf-8").replace(
        "  guardian: {env: BG_TEST_GUARDIAN_KEY}",
        f"  guardian: {{remote: {{url: '{url}', address: '{address}'}}}}",
    )
    path.write_text(text, encoding="utf-8")
    return path


async def _pause(config_path: Path, redactor: Redactor) -> list[ActionStep]:
    config = load_config(config_path, environ={})
    await upgrade_async(config.settings.store.url)
    responder = build_responder(config, InProcessBus(), redactor, environ={})
    try:
        await responder.start()
        events = await responder.handle(finding())
        steps = [e.step for e in events]
        if ActionStep.SUBMITTED in steps:
            assert responder.relayer is not None
            closed = await responder.relayer.wait(events[0].key, within=30)
            steps.append(closed.step)
        return steps
    finally:
        await responder.close()


async def test_a_remote_signer_signs_the_pause_and_the_key_never_enters_breakglass(
    venue: Venue, remote_signer: str, tmp_path: Path
) -> None:
    redactor = Redactor()
    config = _remote_config(venue.manifest.parent, remote_signer, venue.guardian)
    signer = build_responder(load_config(config, environ={}), InProcessBus(), redactor, environ={})
    assert signer.relayer is not None and isinstance(signer.relayer._signer, RemoteSigner)
    assert repr(signer.relayer._signer) == f"RemoteSigner({venue.guardian})"
    assert await signer.relayer._signer.accounts() == [venue.guardian]
    await signer.close()

    steps = await _pause(config, redactor)
    assert steps[-1] is ActionStep.CONFIRMED, steps
    assert venue.view("paused") and venue.guardian_nonce() == 1
    # the URL's token is a configuration secret: redacted like any other
    assert "t0ken-in-the-url" not in redactor.text(f"signing at {remote_signer}")


async def test_a_signer_that_signs_with_another_key_is_refused_and_nothing_is_sent(
    venue: Venue, remote_signer: str
) -> None:
    stranger = Account.create().address  # the signer holds the venue's guardian, not this one
    config = _remote_config(venue.manifest.parent, remote_signer, stranger)
    steps = await _pause(config, Redactor())
    assert steps == [ActionStep.FAILED]
    assert not venue.view("paused") and venue.guardian_nonce() == 0


async def test_an_aws_kms_key_signs_the_pause(
    anvil: Anvil, mocks: Build, tmp_path: Path, kms_endpoint: str
) -> None:
    import boto3

    kms = boto3.client("kms", endpoint_url=kms_endpoint, region_name="us-east-1")
    key_id = kms.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    guardian = address_of_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    anvil.rpc("anvil_setBalance", guardian, hex(10**20))
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = Deployer(w3, mocks)
    contract = deployer.deploy("venue", "MockGuardedVenue", w3.eth.accounts[0], guardian, 3600)
    deployer.manifest(anvil.url).write(tmp_path / "manifest.json")
    path = write_config(tmp_path, PAUSE_ONLY)
    text = path.read_text(encoding="utf-8").replace(
        "  guardian: {env: BG_TEST_GUARDIAN_KEY}",
        "  guardian:\n" + textwrap.indent(
            f"kms: {{key_id: '{key_id}', address: '{guardian}', region: us-east-1, "
            f"endpoint_url: '{kms_endpoint}'}}", "    "
        ),
    )  # fmt: skip
    path.write_text(text, encoding="utf-8")

    steps = await _pause(path, Redactor())
    assert steps[-1] is ActionStep.CONFIRMED, steps
    assert contract.functions.paused().call()
    assert w3.eth.get_transaction_count(guardian) == 1


async def test_a_kms_key_that_is_not_the_configured_guardian_is_refused(kms_endpoint: str) -> None:
    import boto3

    kms = boto3.client("kms", endpoint_url=kms_endpoint, region_name="us-east-1")
    key_id = kms.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signer = KmsSigner(key_id, Account.create().address, region="us-east-1", endpoint_url=kms_endpoint)
    tx = {"type": 2, "chainId": 1, "nonce": 0, "to": "0x" + "11" * 20, "value": 0, "data": b"",
          "gas": 21000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}  # fmt: skip
    from breakglass.errors import ResponseError

    with pytest.raises(ResponseError, match="not the configured guardian"):
        await signer.sign_transaction(tx)
