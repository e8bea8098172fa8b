"""How numbers, indices and exceptions are written in the checker's findings (one style everywhere)."""

from __future__ import annotations

import re


def number(x) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def at(position) -> str:
    return "[" + ", ".join(str(i) for i in position) + "]"


def pair(value) -> tuple:
    """(value, value) for an int option of torch.nn.functional, the tuple itself for a pair."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


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


def where(frames: str) -> str:
    """Where in the candidate's code a traceback ends: its last frame outside the checker, torch and
    importlib, with the code line."""
    lines = frames.splitlines()
    found = ""
    for i, line in enumerate(lines):
        match = re.match(r'\s*File "([^"]+)", line (\d+)(?:, in (\S+))?', line)
        if not match or "simple_conv_net/check" in match.group(1) or "/torch/" in match.group(1) \
                or match.group(1).startswith("<"):
            continue
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        code = "" if following.startswith("File ") or not following else f": {following}"
        within = f", in {match.group(3)}" if match.group(3) else ""
        found = f" (at {match.group(1).rsplit('/', 1)[-1]} line {match.group(2)}{within}{code})"
    return found
