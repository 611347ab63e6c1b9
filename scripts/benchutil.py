"""Shared pieces of the benchmark scripts: timing, Markdown tables, JSON output."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def median_time(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    """Median wall time of ``fn()`` over ``rounds`` calls after one warm-up, and its result.

    The warm-up matters: NumPy's first large temporaries page-fault fresh memory, which makes a
    first timing up to 2× slower (docs/performance.md).
    """
    result = fn()
    times = []
    for _ in range(max(1, rounds)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], result


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table of already formatted cells."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path
