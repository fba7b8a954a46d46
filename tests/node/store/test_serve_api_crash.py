"""A segfault of ``breakglass serve``'s API process leaves detection and containment running (issue 13).

``serve`` as a real process on a guarded mock venue (an interval-mining anvil, SQLite): its API child
is killed with SIGSEGV; an exploit's signal emitted afterwards is still detected, paused on chain by
the guardian and stored as an alert, and a new API process is started.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_outage_support import GUARDIAN_ENV, serve_venue, stop, wait_for

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.solc import Build

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture
def node() -> Iterator[Anvil]:
    with Anvil(AnvilOptions(mode=BlockMode.INTERVAL, block_time=0.5)) as anvil:
        yield anvil


def _children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def test_a_segfault_of_the_api_process_stops_neither_detection_nor_containment(
    node: Anvil, build: Build, tmp_path: Path
) -> None:
    served = serve_venue(node, build, tmp_path, f"sqlite:///{tmp_path / 'bg.db'}")
    try:
        run = served.start()
        wait_for(lambda: served.logged("api.process_listening"), "the API process listening")
        wait_for(lambda: len(_children(run.pid)) == 1, "one API process")
        (api,) = _children(run.pid)
        environ = Path(f"/proc/{api}/environ").read_bytes().split(b"\0")
        assert not any(v.startswith(GUARDIAN_ENV.encode() + b"=") for v in environ)  # the key stays out
        served.set_leverage(40)
        wait_for(lambda: served.paused(40), "market 40 paused (before the crash)")

        os.kill(api, signal.SIGSEGV)
        wait_for(lambda: served.logged("api.process_died"), "the crash logged")
        served.set_leverage(41)  # the API process is down or restarting
        wait_for(lambda: served.paused(41), "market 41 paused by the guardian after the crash")
        alerts = "SELECT count(*) FROM alerts WHERE monitor_id = 'leverage-set'"
        wait_for(lambda: served.query(alerts)[0][0] == 2, "its alert stored next to the first one's")
        assert run.poll() is None, "the pipeline's process died with its API"
        wait_for(lambda: any(p != api for p in _children(run.pid)), "a new API process")
        died = [e for e in served.events() if e.get("event") == "api.process_died"]
        assert died[0]["signal"] == "SIGSEGV" and died[0]["pid"] == api, json.dumps(died)
        assert stop(run) == 0
    finally:
        served.stop_all()
