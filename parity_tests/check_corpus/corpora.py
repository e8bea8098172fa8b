"""The fixture corpora of the checker's forms: cs231n/, lenet_dict/, lenet_model/ and custom_form/.

Each corpus holds a correct implementation (its base folder), short snippets that each carry one bug
or one variant, and a MANIFEST.json naming every fixture: the base, the snippets appended to it (a
snippet's definitions replace the base's, as with good.py and broken/ one level up), the path handed
to the checker, and what a correct checker must say about each function it breaks.

    from corpora import compose
    target = compose("cs231n", "affine_dw_transposed", tmp_path)   # tmp_path/affine_dw_transposed/cs231n

Also a script: ``python parity_tests/check_corpus/corpora.py CORPUS DIR`` writes every fixture of
CORPUS into DIR/<fixture>/ and prints the targets.
"""

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
CORPORA = ("cs231n", "lenet_dict", "lenet_model", "custom_form")
SEPARATOR = "\n\n# ---- the fixture's snippet ----\n"


def manifest(corpus: str) -> dict:
    return json.loads((HERE / corpus / "MANIFEST.json").read_text())


def appended(corpus: str, fixture: str) -> dict:
    """{path in the submission: its text} for every file a snippet of `fixture` goes into (base text, then
    each snippet in order, behind a separator line)."""
    spec = manifest(corpus)
    entry = spec["fixtures"][fixture]
    base = HERE / corpus / entry.get("base", spec["base"])
    texts = {}
    for snippet in entry.get("snippets", []):
        source, into = (snippet, spec["into"]) if isinstance(snippet, str) else (snippet["file"], snippet["into"])
        texts[into] = texts.get(into, (base / into).read_text()) + SEPARATOR + (HERE / corpus / source).read_text()
    return texts


def compose(corpus: str, fixture: str, folder: Path) -> Path:
    """Write the submission `fixture` of `corpus` into folder/fixture/ and return the checker's TARGET."""
    spec = manifest(corpus)
    entry = spec["fixtures"][fixture]
    destination = Path(folder) / fixture
    shutil.copytree(HERE / corpus / entry.get("base", spec["base"]), destination,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for into, text in appended(corpus, fixture).items():
        (destination / into).write_text(text)
    return destination / entry.get("submission", spec["submission"])


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in CORPORA:
        sys.exit(f"usage: python {Path(__file__).name} {{{','.join(CORPORA)}}} DIR")
    for name in manifest(sys.argv[1])["fixtures"]:
        print(compose(sys.argv[1], name, Path(sys.argv[2])))
