#!/usr/bin/env bash
# Foundation benchmark (by hand, never in CI): `make bench` or `bash benchmarks/run.sh [options]`.
# Options are passed to benchmarks/measure.py (see --help), e.g.
#   bash benchmarks/run.sh --workers 2 --skip-obs          # API only, 2 workers
#   bash benchmarks/run.sh --skip-api --reuse-obs           # Observation scaling, keep loaded DBs
#   bash benchmarks/run.sh --workers 2 --skip-obs --profile # py-spy each scenario under load
# Needs PostgreSQL on 127.0.0.1:5432 (BENCH_ADMIN_URL to change) and Debian's wrk.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
  echo "wrk is missing: apt-get install -y wrk" >&2
  exit 2
fi
if [[ " $* " == *" --profile "* ]] && [ ! -x .venv/bin/py-spy ]; then
  echo "installing py-spy into .venv for --profile" >&2
  .venv/bin/pip install --quiet py-spy
fi
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); wrk, server and PostgreSQL share them"
exec .venv/bin/python benchmarks/measure.py "$@"
