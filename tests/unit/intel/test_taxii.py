"""Signed intel over TAXII 2.1: a bundle published to a medallion collection (objects and a signature
object) is pulled back, verified and imported; objects changed on the server, or not covered by a
signature, are refused; a collection that does not answer keeps what the source gave before."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from breakglass.config.intel import IntelSourceConfig
from breakglass.intel.bundle import AttackContract, IncidentIntel, build_bundle
from breakglass.intel.feed import pull_sources, read_store
from breakglass.intel.signing import sign_bundle
from breakglass.intel.taxii import publish_bundle
from breakglass.respond.signer import LocalSigner

KEY = "0x" + "d4" * 32
ATTACKER = "0x" + "ab" * 20
CODE_HASH = "0x" + "ee" * 32
NOW_MS = 1_780_000_000_000
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"


@pytest.fixture(scope="module")
def medallion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A medallion TAXII 2.1 server (memory backend) with one writable collection, on a free port."""
    from medallion import application_instance, load_app

    folder = tmp_path_factory.mktemp("taxii")
    collection = {
        "id": COLLECTION,
        "title": "venue-a intel",
        "can_read": True,
        "can_write": True,
        "media_types": ["application/stix+json;version=2.1"],
        "objects": [],
        "manifest": [],
    }
    data = {
        "/discovery": {"title": "test", "api_roots": ["http://127.0.0.1/intel/"]},
        "intel": {
            "information": {
                "title": "intel",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 10_000_000,
            },
            "status": [],
            "collections": [collection],
        },
    }
    (folder / "data.json").write_text(json.dumps(data), encoding="utf-8")
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(folder / "data.json"),
        },
        "users": {"peer": "secret"},
        "taxii": {"max_page_size": 100},
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    app = load_app(str(folder / "config.json"))
    assert app is application_instance
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(5)


def _url(server: Any) -> str:
    return f"http://127.0.0.1:{server.server_port}/intel/collections/{COLLECTION}/"


def _bundle(incident: str, attacker: str = ATTACKER) -> dict[str, Any]:
    intel = IncidentIntel(
        incident,
        "drained",
        "venue-a",
        31337,
        "critical",
        NOW_MS - 1000,
        (attacker,),
        (AttackContract("0x" + "cd" * 20, CODE_HASH),),
        ("0x" + "0f" * 32,),
    )
    return sign_bundle(build_bundle(intel, producer="Venue A", now_ms=NOW_MS), LocalSigner.from_key(KEY))


def _source(url: str, password: str = "secret") -> IntelSourceConfig:
    taxii = {"url": url, "user": "peer", "password": password}
    return IntelSourceConfig(
        name="venue-a", taxii=taxii, signers=[LocalSigner.from_key(KEY).address], severity="critical"
    )  # type: ignore[arg-type]


def test_a_bundle_published_to_a_taxii_collection_is_pulled_verified_and_imported(
    medallion: Any, tmp_path: Path
) -> None:
    stored = publish_bundle(_bundle("inc-1"), _url(medallion), user="peer", password="secret")
    assert stored == 7  # identity, four indicators, report, and the signature object
    [report] = pull_sources([_source(_url(medallion))], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    assert report.accepted == 1 and report.refused == {}, report.problems
    found = {(i.kind, i.value, i.severity) for i in read_store(tmp_path / "intel.json")}
    assert ("account", ATTACKER, "critical") in found and ("code_hash", CODE_HASH, "critical") in found


def test_objects_changed_on_the_server_or_covered_by_no_signature_are_refused(
    medallion: Any, tmp_path: Path
) -> None:
    from taxii2client.v21 import Collection

    collection = Collection(_url(medallion), user="peer", password="secret")
    forged = _bundle("inc-2", attacker="0x" + "77" * 20)
    indicator = next(o for o in forged["objects"] if o["type"] == "indicator")
    publish_bundle(forged, _url(medallion), user="peer", password="secret")
    # a newer version of a signed indicator, pointing at an innocent account
    collection.add_objects(
        {
            "objects": [
                {
                    **indicator,
                    "modified": "2030-01-01T00:00:00.000Z",
                    "pattern": f"[x-evm-account:address = '0x{'55' * 20}']",
                }
            ]
        }
    )
    # and an indicator with no signature at all
    stray = _bundle("inc-3", attacker="0x" + "66" * 20)
    collection.add_objects({"objects": [o for o in stray["objects"] if o["type"] == "indicator"]})
    [report] = pull_sources([_source(_url(medallion))], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    assert report.refused == {"tampered": 1, "unsigned": 1}, report.problems
    values = {i.value for i in read_store(tmp_path / "intel.json")}
    assert (
        "0x" + "55" * 20 not in values and "0x" + "66" * 20 not in values and "0x" + "77" * 20 not in values
    )


def test_a_collection_that_refuses_us_keeps_what_the_source_gave_before(
    medallion: Any, tmp_path: Path
) -> None:
    (tmp_path / "intel.json").write_text(
        json.dumps(
            {
                "version": 1,
                "indicators": [
                    {
                        "kind": "account",
                        "value": ATTACKER,
                        "source": "venue-a",
                        "signer": "0x",
                        "severity": "high",
                        "confidence": 70,
                        "expires_at_ms": NOW_MS * 2,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    [report] = pull_sources(
        [_source(_url(medallion), password="wrong")], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS
    )
    assert "did not answer" in report.problems[0] and "secret" not in report.problems[0]
    assert [i.value for i in read_store(tmp_path / "intel.json")] == [ATTACKER]


def test_intel_publish_refuses_a_tampered_bundle_and_publishes_a_signed_one(
    medallion: Any, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from breakglass.cli.main import app
    from breakglass.logs import configure_logging

    bundle = _bundle("inc-4")
    (tmp_path / "good.json").write_text(json.dumps(bundle), encoding="utf-8")
    bundle["objects"][1]["name"] = "changed"
    (tmp_path / "bad.json").write_text(json.dumps(bundle), encoding="utf-8")
    args = ["--collection", _url(medallion), "--user", "peer", "--password-env", "TAXII_PW"]
    try:
        bad = CliRunner().invoke(app, ["intel", "publish", str(tmp_path / "bad.json"), *args],
                                 env={"TAXII_PW": "secret", "COLUMNS": "200"})  # fmt: skip
        good = CliRunner().invoke(app, ["intel", "publish", str(tmp_path / "good.json"), *args],
                                  env={"TAXII_PW": "secret", "COLUMNS": "200"})  # fmt: skip
    finally:
        configure_logging()  # the commands logged to the runner's stream, closed now
    assert bad.exit_code == 1 and "changed after signing" in bad.output
    # the identity is the same in every bundle of a producer: the collection holds it already
    assert good.exit_code == 0 and "6 object(s) stored" in good.output, good.output
