#!/usr/bin/env bash
# Run by Snakemake inside the new conda env of fame.yaml.
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-ecem.sh"
