"""Forgetting orphaned blocks: the ``Rewindable`` protocol and an ``UndoLog`` for detector state.

On a reorg the follower walks back to the common ancestor and the engine calls ``rewind(ancestor)``
on every detector that has it: the detector forgets everything it learned from blocks above the
ancestor, then sees the new branch's blocks as if the old ones had never been. Stateless detectors
(event, call, transaction, intel) need nothing; governance keeps the holders of its `allow_roles`.

State that cannot be recomputed (a taint spread in an orphaned block, the ``prev`` values of an
invariant) is restored from per-block undo records kept for ``UNDO_BLOCKS`` blocks: the follower's
``max_reorg_depth``, beyond which a reorg is a ``ChainError`` and no rewind happens anyway.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, MutableMapping, MutableSet
from typing import Protocol, TypeVar, runtime_checkable

__all__ = ["UNDO_BLOCKS", "Rewindable", "UndoLog"]

UNDO_BLOCKS = 256
"""Blocks of undo information a detector keeps: ``Follower(max_reorg_depth=256)``'s default."""

K = TypeVar("K")
V = TypeVar("V")


@runtime_checkable
class Rewindable(Protocol):
    """A detector whose findings depend on earlier blocks (windows, taint, ``prev``)."""

    def rewind(self, to_block: int) -> None:
        """Forget everything learned from blocks numbered above ``to_block``."""
        ...


class UndoLog:
    """Undo steps of the last ``depth`` blocks, applied newest first by ``rewind``.

    Call ``begin(number)`` before changing state for a block, change state through ``put``,
    ``delete``, ``add`` and ``discard`` (or ``record`` any undo step), and ``rewind(to_block)``
    restores the state as it was after ``to_block``.
    """

    def __init__(self, depth: int = UNDO_BLOCKS) -> None:
        self._blocks: deque[tuple[int, list[Callable[[], object]]]] = deque(maxlen=depth)

    def begin(self, number: int) -> None:
        if self._blocks and self._blocks[-1][0] == number:
            return  # the same block again (a re-run): its steps accumulate
        self._blocks.append((number, []))

    def record(self, undo: Callable[[], object]) -> None:
        if self._blocks:
            self._blocks[-1][1].append(undo)

    def put(self, mapping: MutableMapping[K, V], key: K, value: V) -> None:
        if key in mapping:
            old = mapping[key]
            self.record(lambda: mapping.__setitem__(key, old))
        else:
            self.record(lambda: mapping.pop(key, None))
        mapping[key] = value

    def delete(self, mapping: MutableMapping[K, V], key: K) -> None:
        if key in mapping:
            old = mapping.pop(key)
            self.record(lambda: mapping.__setitem__(key, old))

    def add(self, items: MutableSet[K], item: K) -> None:
        if item not in items:
            items.add(item)
            self.record(lambda: items.discard(item))

    def discard(self, items: MutableSet[K], item: K) -> None:
        if item in items:
            items.discard(item)
            self.record(lambda: items.add(item))

    def rewind(self, to_block: int) -> None:
        while self._blocks and self._blocks[-1][0] > to_block:
            _number, steps = self._blocks.pop()
            for undo in reversed(steps):
                undo()

    def __len__(self) -> int:
        return len(self._blocks)
