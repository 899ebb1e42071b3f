#!/usr/bin/env bash
# Shared by the envs' <name>.post-deploy.sh, run by Snakemake inside a new conda env: installs
# the requirement files named as arguments without their dependencies (../requirements/nodeps-*.txt),
# then the ecem package itself (editable, its dependencies are the env's own pins).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for requirements in "$@"; do
    python -m pip install --no-deps -r "$here/../requirements/$requirements"
done
python -m pip install --no-deps -e "$here/.."
