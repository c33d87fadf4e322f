#!/usr/bin/env bash
# The hosted CPU job: the tests, then the suite on the twins against their committed baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
make test
make bench ARGS="--device tpu-sim --device a53-sim --baseline fixtures/baselines/twins-default-collar.json"
