"""How numbers, indices and exceptions are written in the checker's findings (one style everywhere)."""

from __future__ import annotations


def number(x) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def at(position) -> str:
    return "[" + ", ".join(str(i) for i in position) + "]"


def first_line(text: str, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def error_text(error: dict) -> str:
    """An exception record as 'Type: first line of its message', saying so when it is the memory limit."""
    text = f"{error['type']}: {first_line(error['message'])}".rstrip(": ")
    if error["type"] == "MemoryError" or "can't allocate memory" in error["message"]:
        text += " (out of memory: the child's memory limit, --memory-mb, stopped it)"
    return text


def evidence(result) -> str:
    """The first entry of a Comparison beyond the tolerance, both values."""
    if result.first is None:
        return ""
    position, ours, theirs = result.first
    return f"; first differing entry {at(position)}: {number(ours)} where native gives {number(theirs)}"
