"""Playing a scenario: send its steps one by one, honour its waits, record every outcome, measure the loss.

``ScenarioRun`` exposes the play step by step (``steps()`` then ``execute(step)``) so that a drill runner
can watch, simulate or front-run between steps; ``play()`` does it all. A reverted step (for example
because a defender paused the venue) is recorded, never raised; a step marked ``abort_on_revert`` ends
the phase. Loss = fall of (vault cash + insurance fund) from just before the strike to its end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3.exceptions import TimeExhausted, Web3Exception
from web3.types import RPCEndpoint

from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD, Venue, VenueBalances
from breakglass.devnet.venue.tx import PRIORITY_FEE_WEI, build_tx, send_signed, sign_tx, transact
from breakglass.drills.scenarios.base import AttackContext, Phase, Scenario, Step, StepResult

__all__ = ["ScenarioResult", "ScenarioRun", "play"]


@dataclass
class ScenarioResult:
    scenario: str
    incident: str
    switches: tuple[str, ...]
    target_label: str
    target: int
    loss: int
    attacker: str
    attack_contracts: dict[str, str]
    steps: list[StepResult] = field(default_factory=list)
    first_strike_block: int | None = None
    last_block: int | None = None

    @property
    def loss_usd(self) -> float:
        return self.loss / USD

    @property
    def target_usd(self) -> float:
        return self.target / USD

    @property
    def fraction(self) -> float:
        return self.loss / self.target if self.target else 0.0

    @property
    def reverted(self) -> int:
        return sum(1 for s in self.steps if not s.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "incident": self.incident,
            "switches": list(self.switches),
            "target_label": self.target_label,
            "target": self.target,
            "target_usd": self.target_usd,
            "loss": self.loss,
            "loss_usd": self.loss_usd,
            "fraction": self.fraction,
            "attacker": self.attacker,
            "attack_contracts": self.attack_contracts,
            "first_strike_block": self.first_strike_block,
            "last_block": self.last_block,
            "steps": [s.to_json() for s in self.steps],
        }


class ScenarioRun:
    """One play of one scenario on one venue.

    ``fast_forward=True`` (automine) advances the chain clock over each step's wait with
    ``evm_increaseTime`` + ``anvil_mine``; ``False`` (interval mining) waits in real time for the blocks
    and for ``wait_seconds * time_scale`` (drills compress the attackers' minutes into seconds).
    """

    def __init__(
        self,
        scenario: Scenario,
        venue: Venue,
        build: Build,
        *,
        fast_forward: bool = True,
        priority_fee: int = PRIORITY_FEE_WEI,
        receipt_timeout: float = 120.0,
        time_scale: float = 1.0,
    ) -> None:
        self.scenario = scenario
        self.venue = venue
        self.ctx = AttackContext(venue, build, scenario.name)
        self.fast_forward = fast_forward
        self.priority_fee = priority_fee
        self.receipt_timeout = receipt_timeout
        self.time_scale = time_scale
        self.before: VenueBalances | None = None
        self.target = 0
        self.first_strike_block: int | None = None

    @property
    def w3(self) -> Web3:
        return self.venue.w3

    def fund_dirty_wallet(self) -> None:
        """Prior history: the attacker's known wallet holds what it will launder. Its ether is set
        directly (no transaction links it to any venue account); it mints the test collateral itself."""
        s, dirty = self.scenario, self.ctx.dirty_wallet
        wei = s.funding_eth + 10**18
        self.w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [dirty.address, hex(wei)])
        transact(self.w3, dirty, self.venue.usd.functions.mint(dirty.address, s.funding_usd), gas=100_000)

    def steps(self) -> Iterator[tuple[Phase, Step]]:
        """Every step of every phase, lazily; the strike's baseline is taken when it begins."""
        for phase, source in ((Phase.PREPARE, self.scenario.prepare), (Phase.SETUP, self.scenario.setup)):
            for step in source(self.ctx):
                yield phase, step
                if step.abort_on_revert and not self.ctx.last_ok():
                    return
        self.before = self.venue.balances()
        self.target = self.scenario.target(self.venue)
        for step in self.scenario.strike(self.ctx):
            yield Phase.STRIKE, step
            if step.abort_on_revert and not self.ctx.last_ok():
                return

    def execute(self, phase: Phase, step: Step) -> StepResult:
        """Sign and send one step, wait for its receipt, then honour its wait."""
        tx_hash: str | None = None
        try:
            tx = build_tx(
                self.w3,
                step.signer.address,
                to=step.to,
                data=step.data,
                value=step.value,
                gas=step.gas,
                priority_fee=self.priority_fee,
            )
            sent = send_signed(self.w3, sign_tx(step.signer, tx), timeout=self.receipt_timeout)
            tx_hash = sent.tx_hash.to_0x_hex()
            receipt = sent.receipt
            assert receipt is not None
            result = StepResult(
                phase,
                step.label,
                step.signer.address,
                tx_hash,
                receipt["blockNumber"],
                receipt["status"] == 1,
                receipt["gasUsed"],
            )
            if step.records and receipt["contractAddress"]:
                self.ctx.contracts[step.records] = str(receipt["contractAddress"])
        except (Web3Exception, TimeExhausted, ValueError) as exc:
            result = StepResult(phase, step.label, step.signer.address, tx_hash, None, False, error=str(exc))
        if phase is Phase.STRIKE and self.first_strike_block is None:
            self.first_strike_block = result.block
        self.ctx.results.append(result)
        self._wait(step)
        return result

    def _wait(self, step: Step) -> None:
        if self.fast_forward:
            if step.wait_seconds:
                self.w3.provider.make_request("evm_increaseTime", [int(step.wait_seconds)])  # type: ignore[arg-type]
            if step.wait_blocks:
                self.w3.provider.make_request("anvil_mine", [hex(step.wait_blocks)])  # type: ignore[arg-type]
            return
        start_block = self.w3.eth.block_number
        deadline = time.monotonic() + step.wait_seconds * self.time_scale
        while time.monotonic() < deadline or self.w3.eth.block_number < start_block + step.wait_blocks:
            time.sleep(0.05)

    def finish(self) -> ScenarioResult:
        after = self.venue.balances()
        before = self.before or after
        return ScenarioResult(
            scenario=self.scenario.name,
            incident=self.scenario.incident,
            switches=self.scenario.switches,
            target_label=self.scenario.target_label,
            target=self.target,
            loss=before.at_risk - after.at_risk,
            attacker=self.ctx.attacker.address,
            attack_contracts=dict(self.ctx.contracts),
            steps=list(self.ctx.results),
            first_strike_block=self.first_strike_block,
            last_block=self.w3.eth.block_number,
        )


def play(
    scenario: Scenario,
    venue: Venue,
    build: Build,
    *,
    fast_forward: bool = True,
    time_scale: float = 1.0,
) -> ScenarioResult:
    """Play ``scenario`` from start to end on ``venue`` and measure its loss."""
    run = ScenarioRun(scenario, venue, build, fast_forward=fast_forward, time_scale=time_scale)
    run.fund_dirty_wallet()
    for phase, step in run.steps():
        run.execute(phase, step)
    return run.finish()
