"""How a benchmark run reports progress: a description and how many steps it advanced."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int], None]


def no_progress(description: str, advance: int) -> None:
    return None
