"""The lifecycle allows forward moves only, and closing needs a resolution."""

from __future__ import annotations

import pytest

from breakglass.incidents.errors import InvalidTransition
from breakglass.incidents.lifecycle import NEXT, check_reopen, check_transition
from breakglass.incidents.models import IncidentState as S
from breakglass.incidents.models import Resolution as R

ORDER = list(S)


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_forward_moves_are_valid(current: S, target: S) -> None:
    resolution = R.TRUE_POSITIVE if target is S.CLOSED else None
    if target in NEXT[current]:
        check_transition("inc-1", current, target, resolution)
        assert ORDER.index(target) > ORDER.index(current)
    else:
        with pytest.raises(InvalidTransition) as caught:
            check_transition("inc-1", current, target, resolution)
        assert caught.value.current == current and caught.value.target == target


def test_every_open_state_can_be_closed_and_closed_is_final() -> None:
    assert all(S.CLOSED in NEXT[s] for s in S if s is not S.CLOSED)
    assert NEXT[S.CLOSED] == frozenset()


def test_automatic_containment_may_skip_triage() -> None:
    check_transition("inc-1", S.DETECTED, S.CONTAINED, None)


def test_closing_without_a_resolution_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidTransition, match="true_positive, false_positive, duplicate, benign"):
        check_transition("inc-1", S.TRIAGED, S.CLOSED, None)


def test_a_resolution_is_only_given_when_closing() -> None:
    with pytest.raises(InvalidTransition, match="when closing"):
        check_transition("inc-1", S.DETECTED, S.TRIAGED, R.BENIGN)


def test_a_duplicate_names_its_original() -> None:
    with pytest.raises(InvalidTransition, match="names its original"):
        check_transition("inc-1", S.DETECTED, S.CLOSED, R.DUPLICATE)
    check_transition("inc-1", S.DETECTED, S.CLOSED, R.DUPLICATE, "inc-0")


def test_an_incident_cannot_be_closed_as_a_duplicate_of_itself() -> None:
    with pytest.raises(InvalidTransition, match="cannot duplicate itself"):
        check_transition("inc-1", S.TRIAGED, S.CLOSED, R.DUPLICATE, "inc-1")


def test_duplicate_of_goes_only_with_the_duplicate_resolution() -> None:
    with pytest.raises(InvalidTransition, match="goes with resolution duplicate"):
        check_transition("inc-1", S.TRIAGED, S.CLOSED, R.TRUE_POSITIVE, "inc-0")


@pytest.mark.parametrize("current", [s for s in S if s is not S.CLOSED])
def test_only_a_closed_incident_is_reopened(current: S) -> None:
    check_reopen("inc-1", S.CLOSED)
    with pytest.raises(InvalidTransition, match="only a closed incident"):
        check_reopen("inc-1", current)
