"""The documentation (README.md and every page under docs/) read as data: headings and their anchors,
links, the marks on command blocks that say how the tests run them, and the generated output regions.

The marks, an HTML comment on the line before a block's opening fence (docs/testing.md describes them):

    <!-- run -->                       the default suite runs the block's commands as written
    <!-- run: slow -->                 pytest -m slow runs them
    <!-- run: with ARGS -->            ... with ARGS added to each command (a smaller run: --epochs 1 ...)
    <!-- run: slow, exit 1, with ARGS -->   options combine; 'exit N' is the status every command must give
    <!-- not run: REASON -->           a real command that no test runs, and why
    <!-- example -->                   not a command to run as it is (placeholders, a fragment); the block's
                                       first line is a comment that says so

Every bash and python block carries one. A page's blocks run in order in one scratch copy of the
checkout (:func:`mirror`), so a block may use what an earlier one made.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND_LANGUAGES = ("bash", "python")
FENCE = re.compile(r"^(```+)(\S*)\s*$")
MARK = re.compile(r"^<!--\s*(?:(?P<run>run)(?::\s*(?P<options>.*?))?|not run:\s*(?P<reason>.+?)|(?P<example>example))"
                  r"\s*-->$")
OUTPUT = re.compile(r"^<!-- output: (?P<name>[\w-]+) -->\n(?P<body>.*?)^<!-- /output -->$", re.S | re.M)
# Not copied into the scratch checkout: what commands write (runs/, data/), and docs/ (its pictures would be overwritten).
NOT_MIRRORED = {".git", ".venv", "venv", "runs", "data", "docs", ".pytest_cache", ".hypothesis", "build", "dist"}


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@dataclass
class Mark:
    kind: str                  # "run", "not run" or "example"
    slow: bool = False
    exit: int = 0
    extra: str = ""            # arguments added to each command
    reason: str = ""


@dataclass
class Block:
    page: Path
    line: int                  # of the opening fence, 1-based
    language: str
    text: str
    mark: Mark | None

    def commands(self) -> list[str]:
        """The commands the tests run: a python block whole; a bash block line by line (a trailing
        backslash continues a line), blank and comment lines left out, with the mark's ARGS added to
        each command of an '&&' chain."""
        if self.language == "python":
            return [self.text]
        joined = re.sub(r"\\\n\s*", " ", self.text)
        lines = [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not self.mark or not self.mark.extra:
            return lines
        return [" && ".join(with_args(part, self.mark.extra) for part in line.split(" && ")) for line in lines]


def with_args(command: str, extra: str) -> str:
    """``command`` with ``extra`` added before its trailing comment (argparse: a repeated option's last value wins)."""
    body, hash_, comment = command.partition("  #")
    return f"{body.rstrip()} {extra}" + (f"  #{comment}" if hash_ else "")


def parse_mark(comment: str) -> Mark:
    match = MARK.match(comment.strip())
    if not match:
        raise ValueError(f"not a mark: {comment!r}")
    if match["example"]:
        return Mark("example")
    if match["reason"]:
        return Mark("not run", reason=match["reason"])
    mark = Mark("run")
    options = match["options"] or ""
    extra = re.search(r"\bwith\s+(.*)$", options)
    if extra:
        mark.extra = extra[1].strip()
        options = options[:extra.start()]
    for option in filter(None, (o.strip() for o in options.split(","))):
        if option == "slow":
            mark.slow = True
        elif re.fullmatch(r"exit \d+", option):
            mark.exit = int(option.split()[1])
        else:
            raise ValueError(f"unknown option {option!r} in {comment!r}")
    return mark


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the mark on the line before it (if any)."""
    lines = page.read_text().splitlines()
    found, number = [], 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if not opening:
            number += 1
            continue
        fence, language = opening[1], opening[2]
        end = next(i for i in range(number + 1, len(lines)) if lines[i].strip() == fence)
        before = lines[number - 1].strip() if number else ""
        mark = parse_mark(before) if before.startswith("<!--") and MARK.match(before) else None
        found.append(Block(page, number + 1, language, "\n".join(lines[number + 1:end]) + "\n", mark))
        number = end + 1
    return found


def prose(text: str, blank_code: bool = True) -> list[tuple[int, str]]:
    """(line number, line) of ``text`` outside fenced blocks and HTML comments, with inline code spans
    blanked (or not)."""
    text = re.sub(r"<!--.*?-->", lambda m: re.sub(r"[^\n]", " ", m[0]), text, flags=re.S)
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening[1]
            continue
        if fence is not None:
            if line.strip() == fence:
                fence = None
            continue
        out.append((number, re.sub(r"`[^`]*`", lambda m: " " * len(m[0]), line) if blank_code else line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (link targets and code marks dropped), lower case,
    with every character that is not a letter, a digit, a space, '-' or '_' removed and spaces made '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose(page.read_text(), blank_code=False):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match[1])
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\s[^>]*(?:href|src)=\"([^\"]+)\"")


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every Markdown or HTML link and image in ``page``'s prose."""
    found = []
    for number, line in prose(page.read_text()):
        found += [(number, target) for target in LINK.findall(line) + HTML_LINK.findall(line)]
    return found


def outputs(text: str) -> dict[str, str]:
    """The generated output regions, ``<!-- output: NAME -->`` ... ``<!-- /output -->``, by name."""
    return {match["name"]: match["body"] for match in OUTPUT.finditer(text)}


def mnist_directory() -> Path | None:
    """Where the project finds MNIST when run from the repository, or None."""
    from simple_conv_net.data import find_mnist

    try:
        return find_mnist()
    except (FileNotFoundError, ValueError, OSError):
        return None


def mirror(into: Path) -> Path:
    """A scratch checkout in ``into``: links to the repository's files and folders, a folder of its own
    for docs/ (holding a link to docs/examples), runs/ for what commands write, and data/ linking to
    the MNIST files the repository finds. Commands run here leave nothing in the repository."""
    checkout = into / "checkout"
    checkout.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in NOT_MIRRORED and not entry.name.endswith(".egg-info"):
            (checkout / entry.name).symlink_to(entry)
    (checkout / "docs").mkdir()
    (checkout / "docs" / "examples").symlink_to(ROOT / "docs" / "examples")
    (checkout / "runs").mkdir()
    data = mnist_directory()
    if data is not None:
        (checkout / "data").symlink_to(data)
    return checkout


def command_env() -> dict[str, str]:
    """The environment the commands run in: this interpreter's bin first on PATH (python, pytest,
    torchrun), and no data directory from the environment (./data/ of the scratch checkout is found)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SIMPLE_CONV_NET_DATA", None)
    return env


def run(block: Block, checkout: Path, timeout: float) -> list[tuple[str, subprocess.CompletedProcess]]:
    """Each of the block's commands in ``checkout``, in order, with their results."""
    results = []
    for command in block.commands():
        argv = [sys.executable, "-c", command] if block.language == "python" else ["bash", "-c", command]
        results.append((command, subprocess.run(argv, cwd=checkout, env=command_env(), capture_output=True,
                                                text=True, timeout=timeout)))
    return results
