#!/usr/bin/env bash
# Install lucid with its test dependencies into .venv and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -c constraints.txt -e ".[dev]"
bash scripts/setup-test-tools.sh
.venv/bin/python scripts/run_tests.py
