"""The set-up monitor's funding paths: who funded a tainted actor, hop by hop, up to its source."""

from __future__ import annotations

from test_rewind import ATTACKER, MIXER, STRANGER, ctx, setup_detector, signals, tx  # type: ignore[import-not-found]

HOP = "0x" + "88" * 20
CONTRACT = "0x" + "66" * 20


def test_a_tainted_deployment_carries_its_funding_path_through_two_hops() -> None:
    detector = setup_detector(hops=2)
    detector.on_block(ctx(1, tx(MIXER, HOP, value=10**18)))
    detector.on_block(ctx(2, tx(HOP, ATTACKER, value=10**17)))
    found = detector.on_block(ctx(3, tx(ATTACKER, None, created=CONTRACT)))
    assert signals(found) == ["tainted-deployment"]
    assert found[0].evidence["funding"] == [ATTACKER, HOP, MIXER]
    assert found[0].evidence["hops_from_source"] == 2


def test_the_first_funder_is_kept_when_a_tainted_account_is_funded_again() -> None:
    detector = setup_detector(hops=2)
    detector.on_block(ctx(1, tx(MIXER, HOP, value=1), tx(MIXER, ATTACKER, value=1)))
    detector.on_block(ctx(2, tx(HOP, ATTACKER, value=1)))
    assert detector.funding(ATTACKER) == [ATTACKER, MIXER]


def test_an_untainted_actor_has_no_funding_path() -> None:
    detector = setup_detector()
    detector.on_block(ctx(1))
    assert detector.funding(STRANGER) == []
    assert detector.funding(MIXER) == [MIXER]


def test_a_funder_learned_on_an_orphaned_block_is_forgotten() -> None:
    detector = setup_detector(hops=2)
    detector.on_block(ctx(1, tx(MIXER, HOP, value=1)))
    detector.on_block(ctx(2, tx(HOP, ATTACKER, value=1)))  # orphaned
    detector.rewind(1)
    assert ATTACKER not in detector.funder
    detector.on_block(ctx(2, tx(MIXER, ATTACKER, value=1), branch=1))  # the new branch: funded directly
    assert detector.funding(ATTACKER) == [ATTACKER, MIXER]


def test_funding_paths_survive_a_snapshot_and_restore() -> None:
    detector = setup_detector(hops=2)
    detector.on_block(ctx(1, tx(MIXER, HOP, value=1)))
    detector.on_block(ctx(2, tx(HOP, ATTACKER, value=1)))
    restored = setup_detector(hops=2)
    restored.restore(detector.snapshot())
    found = restored.on_block(ctx(3, tx(ATTACKER, None, created=CONTRACT)))
    assert found[0].evidence["funding"] == [ATTACKER, HOP, MIXER]


def test_a_snapshot_without_funders_restores_with_paths_stopping_at_the_actor() -> None:
    detector = setup_detector(hops=2)
    detector.on_block(ctx(1, tx(MIXER, HOP, value=1)))
    detector.on_block(ctx(2, tx(HOP, ATTACKER, value=1)))
    old = {k: v for k, v in detector.snapshot().items() if k != "funder"}
    restored = setup_detector(hops=2)
    restored.restore(old)
    assert restored.tainted(ATTACKER)
    assert restored.funding(ATTACKER) == [ATTACKER]
