"""Pre-execution: pending transactions simulated on the latest state and judged by the detectors."""

from breakglass.simulate.attack import AttackSimulator
from breakglass.simulate.batch import RpcBatcher
from breakglass.simulate.judge import Judge, pending_fees
from breakglass.simulate.relevance import Relevance, RelevanceFilter
from breakglass.simulate.request import SimulatedBlock, SimulatedTx, parse_simulation, simulation_params
from breakglass.simulate.service import (
    AttackSimulationService,
    MempoolService,
    build_attack_simulation,
    build_mempool,
    build_simulation_worker,
)
from breakglass.simulate.simulator import PendingSimulator, Verdict
from breakglass.simulate.worker import SimulationWorker

__all__ = [
    "AttackSimulationService",
    "AttackSimulator",
    "Judge",
    "MempoolService",
    "PendingSimulator",
    "Relevance",
    "RelevanceFilter",
    "RpcBatcher",
    "SimulatedBlock",
    "SimulatedTx",
    "SimulationWorker",
    "Verdict",
    "build_attack_simulation",
    "build_mempool",
    "build_simulation_worker",
    "parse_simulation",
    "pending_fees",
    "simulation_params",
]
