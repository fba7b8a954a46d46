"""Properties of the lifecycle over random walks: forward only, closed is final, closing needs a reason."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from breakglass.incidents.errors import InvalidTransition
from breakglass.incidents.lifecycle import check_transition
from breakglass.incidents.models import IncidentState as S
from breakglass.incidents.models import Resolution as R

ORDER = list(S)


@given(st.lists(st.tuples(st.sampled_from(list(S)), st.none() | st.sampled_from(list(R))), max_size=20))
def test_any_walk_moves_forward_and_stops_at_closed(steps: list[tuple[S, R | None]]) -> None:
    state, visited = S.DETECTED, [S.DETECTED]
    for target, resolution in steps:
        try:
            check_transition("inc-1", state, target, resolution, "inc-0")
        except InvalidTransition:
            continue
        assert ORDER.index(target) > ORDER.index(state)
        assert (resolution is not None) == (target is S.CLOSED)
        state = target
        visited.append(state)
    assert visited == sorted(visited, key=ORDER.index)
    assert visited.count(S.CLOSED) <= 1 and (S.CLOSED not in visited or visited[-1] is S.CLOSED)
