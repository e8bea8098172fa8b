"""The documentation holds: every link and anchor resolves, every file it names exists, every command
block is marked, the blocks marked to run do run (the README's in the default suite, at small sizes;
every page's under -m slow), and the generated outputs match the generator (docs/testing.md).
"""

import importlib.util
import re
import sys

import pytest

import doc_pages
from doc_pages import ROOT

PAGES = doc_pages.pages()
IDS = [doc_pages.name(page) for page in PAGES]
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)          # http:, https:, mailto: ... (not checked: no network)


def check_link(page, target):
    """None if ``target`` (a link in ``page``) resolves, else what is wrong."""
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    if not file.is_relative_to(ROOT):
        return f"{target}: outside the repository"
    if not file.exists():
        return f"{target}: no such file"
    if not anchor:
        return None
    lines = re.fullmatch(r"L(\d+)(?:-L(\d+))?", anchor)
    if lines:
        last = int(lines[2] or lines[1])
        count = len(file.read_text().splitlines())
        return None if last <= count else f"{target}: the file has {count} lines"
    if file.suffix != ".md":
        return f"{target}: an anchor into a file that is not a Markdown page"
    return None if anchor in doc_pages.anchors(file) else f"{target}: no heading with that anchor in {file.name}"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_links_and_anchors_resolve(page):
    problems = [f"line {line}: {problem}" for line, target in doc_pages.links(page)
                if not EXTERNAL.match(target) and (problem := check_link(page, target))]
    assert not problems, "\n".join(problems)


TOP_LEVEL = {entry.name for entry in ROOT.iterdir()} - doc_pages.NOT_MIRRORED | {"docs"}


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_headings_hold_no_math(page):
    """GitHub's anchor of a heading with math in it is not documented: headings are plain text."""
    assert not [line for _, line in doc_pages.prose(page.read_text(), blank_code=False)
                if line.startswith("#") and "$" in line]


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_named_files_exist(page):
    """A path in code marks that starts with one of the repository's folders names a file that exists."""
    text = page.read_text()
    missing = []
    for span in re.findall(r"`([^`\s]+)`", text):
        path = span.rstrip(":,.")
        first = path.split("/")[0]
        if "/" in path and first in TOP_LEVEL and not re.search(r"[<>*{}]|\.\.\.|DIR|^runs/|__pycache__", path):
            if not (ROOT / path.rstrip("/")).exists():
                missing.append(path)
    assert not missing, f"files named in {doc_pages.name(page)} that do not exist: {sorted(set(missing))}"


def test_every_page_is_one_link_from_the_front_door():
    linked = set()
    for index in (ROOT / "README.md", ROOT / "docs" / "README.md"):
        linked |= {(index.parent / target.partition("#")[0]).resolve() for _, target in doc_pages.links(index)
                   if not EXTERNAL.match(target)}
    pages = [page for page in (ROOT / "docs").glob("*.md")]
    assert [doc_pages.name(page) for page in pages if page.resolve() not in linked] == []


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_command_block_is_marked(page):
    problems = []
    for block in doc_pages.blocks(page):
        where = f"{doc_pages.name(page)} line {block.line}"
        if block.language in doc_pages.COMMAND_LANGUAGES:
            if block.mark is None:
                problems.append(f"{where}: a {block.language} block with no mark (docs/testing.md lists them)")
            elif block.mark.kind == "example" and not block.text.lstrip().lower().startswith("# example"):
                problems.append(f"{where}: an example whose first line does not say so ('# example: ...')")
        elif block.mark is not None:
            problems.append(f"{where}: a mark on a {block.language or 'plain'} block, which no test runs")
        elif block.language not in ("text", "json", "toml", "csv"):
            problems.append(f"{where}: a block of language {block.language or '(none)'}: write text, bash or python")
    assert not problems, "\n".join(problems)


def runnable(page, slow):
    """The blocks of ``page`` that the default suite (slow=False) or -m slow runs, in page order."""
    return [block for block in doc_pages.blocks(page)
            if block.mark and block.mark.kind == "run" and (slow or not block.mark.slow)]


def entries():
    """What the repository's top level and its runs/ hold (a command must add nothing there)."""
    return {path.relative_to(ROOT) for folder in (ROOT, ROOT / "runs") if folder.is_dir() for path in folder.iterdir()}


def run_page(page, slow, tmp_path, timeout):
    if doc_pages.mnist_directory() is None:
        pytest.skip("the documented commands read MNIST, which is not available here")
    before = entries()
    checkout = doc_pages.mirror(tmp_path)
    for block in runnable(page, slow):
        for command, result in doc_pages.run(block, checkout, timeout):
            assert result.returncode == block.mark.exit, (
                f"{doc_pages.name(page)} line {block.line}: {command!r} exited with {result.returncode}, "
                f"expected {block.mark.exit}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
    assert entries() <= before, f"the commands wrote into the repository: {sorted(map(str, entries() - before))}"


DEFAULT = [page for page in PAGES if runnable(page, slow=False)]
SLOW = [page for page in PAGES if runnable(page, slow=True)]


@pytest.mark.parametrize("page", DEFAULT, ids=[doc_pages.name(p) for p in DEFAULT])
def test_commands_run(page, tmp_path):
    run_page(page, slow=False, tmp_path=tmp_path, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("page", SLOW, ids=[doc_pages.name(p) for p in SLOW])
def test_commands_run_slow(page, tmp_path):
    run_page(page, slow=True, tmp_path=tmp_path, timeout=1800)


def generator():
    spec = importlib.util.spec_from_file_location("docs_examples_make", ROOT / "docs" / "examples" / "make.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                   # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_generated_outputs_match_the_generator():
    """Every output region of the pages is made by docs/examples/make.py, once, and says its date and machine."""
    make = generator()
    regions = {}
    for page in PAGES:
        for name, body in doc_pages.outputs(page.read_text()).items():
            assert name not in regions, f"output {name} in both {regions[name]} and {doc_pages.name(page)}"
            regions[name] = doc_pages.name(page)
            assert re.search(r"^\*Output of .*, \d{4}-\d{2}-\d{2}, on .+\*$", body, re.M), (
                f"{name} in {doc_pages.name(page)} is not generated (run python docs/examples/make.py)")
    assert sorted(regions) == sorted(make.REGIONS)
    assert {region.run for region in make.REGIONS.values()} <= set(make.RUNS)
