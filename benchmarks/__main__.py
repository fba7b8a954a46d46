"""Run every benchmark: each ``benchmarks/*.py`` module's ``main()``, then a summary table.

    python -m benchmarks                 # all of them
    python -m benchmarks detection       # only the named modules

A module's ``main()`` prints its own figures, writes ``benchmarks/results/<name>.json`` and returns its
results (a dict); the table shows each module's top-level numbers and how long it took. Modules run
with no command-line arguments (their defaults).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def modules() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def headline(results: Any) -> str:
    """The scalar figures of a result dict, flattened one level, for the table."""
    if not isinstance(results, dict):
        return "" if results is None else str(results)[:120]
    parts: list[str] = []
    for key, value in results.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{key}={value}")
        elif isinstance(value, dict):
            parts += [f"{key}.{k}={v}" for k, v in value.items() if isinstance(v, int | float)][:3]
    return ", ".join(parts)[:300]


def main(argv: list[str] | None = None) -> int:
    wanted = argv if argv is not None else sys.argv[1:]
    names = [n for n in modules() if not wanted or n in wanted]
    table = Table(title="benchmarks")
    for column in ("benchmark", "status", "seconds", "figures"):
        table.add_column(column)
    failed = 0
    for name in names:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            runner = getattr(module, "main", None)
            if runner is None:
                continue
            results = runner([]) if runner.__code__.co_argcount else runner()
            status = "ok"
        except Exception:  # a failing benchmark must not hide the others' figures
            traceback.print_exc()
            results, status = None, "FAILED"
            failed += 1
        table.add_row(name, status, f"{time.perf_counter() - started:.1f}", headline(results))
    Console().print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
