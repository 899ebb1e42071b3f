#!/usr/bin/env bash
# Run by Snakemake inside the new conda env (see pipeline.yaml).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python -m pip install --no-deps -r "$here/../requirements/nodeps.txt"
python -m pip install --no-deps -e "$here/.."
