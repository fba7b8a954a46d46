"""``breakglass check`` builds offline what start-up builds: each broken variant of the shipped examples
(issue 14, item 2) is one error at the line of the mistake, with the names that exist. The examples are
deployed on anvil once for their manifests (the reference venue; Synthetix from its authors' npm
package); ``check`` itself reads no chain."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner
from web3 import Web3

from breakglass.check import check_config
from breakglass.cli.main import app
from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.devnet.toolchain import project_root
from breakglass.devnet.venue.deploy import deploy_venue_set

pytestmark = [pytest.mark.node, pytest.mark.slow]

EXAMPLES = project_root() / "examples"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging onto CliRunner's stream, which closes after each invocation: a later
    test of the same process logging through it would fail."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("manifests")
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        deployer = Deployer(Web3(Web3.HTTPProvider(node.url)), compile_contracts())
        deploy_venue_set(deployer)
        deployer.manifest(node.url).write(folder / "venue.json")
    spec = importlib.util.spec_from_file_location("synthetix_deploy", EXAMPLES / "synthetix" / "deploy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synthetix_deploy"] = module
    spec.loader.exec_module(module)
    with Anvil(AnvilOptions(code_size_limit=0x10000)) as node:
        module.deploy_synthetix(Web3(Web3.HTTPProvider(node.url)), node.url).manifest().write(
            folder / "synthetix.json"
        )
    yield {"venue": folder / "venue.json", "synthetix": folder / "synthetix.json"}


EXAMPLE_FILES = {
    "venue": (EXAMPLES / "venue.yaml", "venue"),
    "playbooks": (EXAMPLES / "playbooks.venue.yaml", "venue"),
    "synthetix": (EXAMPLES / "synthetix" / "breakglass.yaml", "synthetix"),
}


def _write(
    tmp_path: Path, manifests: dict[str, Path], example: str, old: str = "", new: str = ""
) -> tuple[Path, int]:
    """The example pointed at its manifest with ``old`` replaced by ``new`` (once); the line changed."""
    source, manifest = EXAMPLE_FILES[example]
    text = re.sub(r"(?m)^deployment: .*$", f"deployment: {manifests[manifest]}", source.read_text("utf-8"))
    line = 0
    if old:
        assert text.count(old) == 1, f"{old!r} is not once in {source}"
        line = text[: text.index(old)].count("\n") + 1
        text = text.replace(old, new)
    path = tmp_path / f"{example}.yaml"
    path.write_text(text, encoding="utf-8")
    return path, line


@pytest.mark.parametrize("example", sorted(EXAMPLE_FILES))
def test_the_shipped_examples_pass(example: str, manifests: dict[str, Path], tmp_path: Path) -> None:
    path, _ = _write(tmp_path, manifests, example)
    report = check_config(path)
    assert report.errors == ()


BROKEN = [
    # (example, old, new, what the one error says)
    (
        "venue",
        "held: usd.balanceOf(vault)",
        "held: usd.balanceOff(vault)",
        "has no function 'balanceOff'",
        "did you mean 'balanceOf'",
    ),
    ("venue", "expect: cash == held ||", "expect: cassh == held ||", "unknown name(s) ['cassh']", ""),
    (
        "venue",
        "held: usd.balanceOf(vault)",
        "held: usd.balanceOf(vualt)",
        "'vualt' is no contract",
        "did you mean 'vault'",
    ),
    ("venue", "args.updater !=", "args.updatr !=", "args has no field 'updatr'", "did you mean 'updater'"),
    (
        "venue",
        "[MaxLeverageSet,",
        "[MaxLeverageSett,",
        "has event 'MaxLeverageSett'",
        "did you mean 'MaxLeverageSet'",
    ),
    (
        "venue",
        "expect: cash == held || prev.cash == prev.held",
        "expect: cash == held || prev.cahs == prev.held",
        "prev has no field 'cahs'",
        "did you mean 'cash'",
    ),
    (
        "venue",
        'where: args.updater != "0x976ea74026e726554db657fa54763abd0c3a0aa9"',
        "where: args.updater > 5",
        "no such overload",
        "",
    ),
    (
        "venue",
        "[VenuePaused, VenueUnpaused,",
        "[VenuePause, VenueUnpaused,",
        "has event 'VenuePause'",
        "did you mean 'VenuePaused'",
    ),
    (
        "venue",
        'where: >-\n      logs.exists(d, d.contract == "vault" && d.event == "Deposit" &&\n'
        '      logs.exists(w, w.contract == "vault" && w.event == "Withdraw" && w.args.account ==',
        'where: >-\n      logs.exists(d, d.contract == "vault" && d.event == "Deposit" &&\n'
        '      logs.exists(w, w.contract == "vault" && w.event == "Withdraw" && w.args.acount ==',
        "no such key: 'acount'",
        "did you mean 'account'",
    ),
    (
        "venue",
        "allow_contracts: [timelock]",
        "allow_roles: [{contract: timelock, role: PROPOSER_ROL}]\n    allow_contracts: [timelock]",
        "timelock has no role 'PROPOSER_ROL'",
        "did you mean 'PROPOSER_ROLE'",
    ),
    (
        "venue",
        "allow_contracts: [timelock]",
        "allow_roles: [{contract: oracle, role: PROPOSER_ROLE}]\n    allow_contracts: [timelock]",
        "oracle has no RoleGranted event",
        "",
    ),
    (
        "playbooks",
        "function: pauseVenue\n        once_per",
        "function: pauseVenu\n        once_per",
        "no function 'pauseVenu'",
        "did you mean 'pauseVenue'",
    ),
    (
        "playbooks",
        "function: setWithdrawalLimit, args: [1000000000000]",
        "function: setWithdrawalLimit, args: [1000000000000, 2]",
        "argument",
        "",
    ),
    (
        "playbooks",
        "function: setWithdrawalLimit, args: [1000000000000]",
        "function: setWithdrawalLimit, args: [lots]",
        "not a valid uint256",
        "",
    ),
    (
        "playbooks",
        "function: pauseVenue\n        once_per",
        "function: unpauseVenue\n        once_per",
        "the policy refuses guardian.unpauseVenue",
        "",
    ),
    (
        "synthetix",
        "calls: { price: feed_eth.latestAnswer() }",
        "calls: { price: feed_eth.latestAnswr() }",
        "has no function 'latestAnswr'",
        "did you mean 'latestAnswer'",
    ),
    (
        "synthetix",
        "expect: deviation(price, prev.price) < 0.2\n  - id: btc",
        "expect: deviation(prize, prev.price) < 0.2\n  - id: btc",
        "unknown name(s) ['prize']",
        "",
    ),
    (
        "synthetix",
        "calls: { supply: susd.totalSupply() }",
        "calls: { supply: susd.balanceOf(perps_ethh) }",
        "'perps_ethh' is no contract",
        "did you mean 'perps_eth'",
    ),
    (
        "synthetix",
        "where: args.marginDelta <",
        "where: args.marginDleta <",
        "args has no field 'marginDleta'",
        "did you mean 'marginDelta'",
    ),
    (
        "synthetix",
        "function: suspendFutures\n",
        "function: suspendFuture\n",
        "no function 'suspendFuture'",
        "did you mean 'suspendFutures'",
    ),
    # attack_simulation.follow_ups (issue 16): the function, the event, its argument, the contract
    (
        "venue",
        "contract: market_eth, function: executeOrder,",
        "contract: market_eth, function: executeOrdr,",
        "market_eth has no function 'executeOrdr'",
        "did you mean 'executeOrder'",
    ),
    (
        "venue",
        "for_each: market_eth.OrderCreated,",
        "for_each: market_eth.OrderCreatd,",
        "market_eth has no event 'OrderCreatd'",
        "did you mean 'OrderCreated'",
    ),
    (
        "venue",
        'for_each: market_btc.OrderCreated, args: ["{event.orderId}"]',
        'for_each: market_btc.OrderCreated, args: ["{event.orderid}"]',
        "OrderCreated has no argument 'orderid'",
        "did you mean 'orderId'",
    ),
    (
        "venue",
        "contract: market_thin, function: executeOrder,",
        "contract: market_thn, function: executeOrder,",
        "'market_thn'",
        "did you mean 'market_thin'",
    ),
    ("synthetix", 'args: ["{labels.market}", 99]', 'args: ["{labels.market}"]', "argument", ""),
    ("synthetix", "args: [99]", "args: [true]", "not a valid uint256", ""),
    (
        "synthetix",
        "function: suspendFutures\n        args: [99]",
        "function: resumeFutures\n        args: []",
        "the policy refuses system_status.resumeFutures",
        "",
    ),
]


@pytest.mark.parametrize(("example", "old", "new", "says", "hint"), BROKEN)
def test_a_broken_variant_is_one_error_at_its_line(
    example: str, old: str, new: str, says: str, hint: str, manifests: dict[str, Path], tmp_path: Path
) -> None:
    path, line = _write(tmp_path, manifests, example, old, new)
    report = check_config(path)
    assert [str(e) for e in report.errors] and len(report.errors) == 1, report.errors
    error = report.errors[0]
    assert (error.file, error.line) == (str(path), line), str(error)
    assert says in error.message and hint in error.message, str(error)


@pytest.mark.parametrize("example", sorted(EXAMPLE_FILES))
def test_a_missing_manifest_is_one_error_not_one_per_reference(
    example: str, manifests: dict[str, Path], tmp_path: Path
) -> None:
    missing = {name: tmp_path / "nope.json" for name in manifests}
    path, _ = _write(tmp_path, missing, example)
    report = check_config(path)
    assert len(report.errors) == 1, "\n".join(map(str, report.errors))
    assert "nope.json" in report.errors[0].message


def test_the_command_prints_file_line_and_exits_2(manifests: dict[str, Path], tmp_path: Path) -> None:
    path, line = _write(tmp_path, manifests, "venue", "args.updater !=", "args.updatr !=")
    result = CliRunner().invoke(app, ["check", str(path)], terminal_width=400)
    assert result.exit_code == 2
    assert f"{path}:{line} monitors[" in result.output and "did you mean 'updater'" in result.output


def test_a_timelock_judged_only_by_who_schedules_is_warned_about(
    manifests: dict[str, Path], tmp_path: Path
) -> None:
    path, _ = _write(tmp_path, manifests, "venue")
    [warning] = [w for w in check_config(path).warnings if "scheduled_allow" in w.message]
    assert warning.path.endswith(".contracts") and "timelock" in warning.message
    listed = "allow_contracts: [timelock]\n    scheduled_allow: [{contract: guardian, function: '*'}]"
    path, _ = _write(tmp_path, manifests, "venue", "allow_contracts: [timelock]", listed)
    report = check_config(path)
    assert report.errors == () and not [w for w in report.warnings if "scheduled_allow" in w.message]


def test_roles_by_name_or_hash_pass(manifests: dict[str, Path], tmp_path: Path) -> None:
    roles = (
        "allow_roles:\n      - {contract: timelock, role: PROPOSER_ROLE}\n"
        "      - {contract: guardian, role: DEFAULT_ADMIN_ROLE}\n"
        f"      - {{contract: timelock, role: '0x{'ab' * 32}'}}\n    allow_contracts: [timelock]"
    )
    path, _ = _write(tmp_path, manifests, "venue", "allow_contracts: [timelock]", roles)
    assert check_config(path).errors == ()
