#!/usr/bin/env bash
# Installs the checker that run_autograder runs. Gradescope runs this once, as root, when it builds the autograder's
# image (the zip unpacked in /autograder/source, beside this file); run-autograder --setup runs it into a fresh tree.
#
# Every package is the version this zip was built and tested with: torch's CPU build pinned below, every other
# dependency pinned in requirements.txt, and this project's own wheel from wheels/, each installed with --no-deps so
# that nothing is resolved on the day, then checked together (pip check). Environment:
#   AUTOGRADER_VENV  the virtual environment to create (default: venv beside this file)
#   TORCH_INDEX_URL  where torch comes from (default: PyTorch's CPU index; set it empty to use pip's own
#                    configuration, a local wheel or a mirror)
#   PYTHON           the interpreter (default: python@PYTHON_VERSION@, installed with apt-get where it is missing)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${AUTOGRADER_VENV:-$here/venv}"
index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
python="${PYTHON:-python@PYTHON_VERSION@}"

if ! command -v "$python" >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python@PYTHON_VERSION@" "python@PYTHON_VERSION@-venv"
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (@PYTHON_TUPLE@))' 2>/dev/null; then
    echo "setup.sh: $python is not Python @PYTHON_VERSION@, which this zip was built and tested with (PYTHON=... names one)" >&2
    exit 1
fi

"$python" -m venv --clear "$venv"
install=("$venv/bin/python" -m pip install --quiet --no-deps --no-cache-dir --disable-pip-version-check)
"${install[@]}" ${index:+--index-url "$index"} "torch==@TORCH_VERSION@"
"${install[@]}" --requirement "$here/requirements.txt"
"${install[@]}" "$here"/wheels/*.whl
"$venv/bin/python" -m pip check --disable-pip-version-check
"$venv/bin/python" -c 'import torch, simple_conv_net.check.autograder; print("setup.sh: ready: torch", torch.__version__)'
