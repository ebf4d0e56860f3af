#!/usr/bin/env bash
# Fails when the committed gen/ is not what `make gen` produces from proto/.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s gen
if ! git diff --quiet --exit-code -- gen || [ -n "$(git ls-files --others --exclude-standard gen)" ]; then
  echo "gen/ is stale: run 'make gen' and commit the result" >&2
  git status --short gen >&2
  exit 1
fi
echo "gen/ is up to date"
