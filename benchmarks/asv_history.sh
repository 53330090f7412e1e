#!/usr/bin/env bash
# Benchmark the last N commits with asv, so the dashboard shows history, then publish it.
#
#   benchmarks/asv_history.sh [N] [extra `asv run` arguments...]      (default N=5)
#   .venv/bin/asv preview          # serves .asv/html on http://127.0.0.1:8080
#
# For each of the last N first-parent commits of HEAD, oldest first:
#   1. export the commit (`git archive`) into a temporary directory -- the
#      working tree, index and branches are never touched;
#   2. install it there with `pip install --no-deps --no-build-isolation --target`:
#      the environment's own (editable) fastnn stays as it is, nothing to restore;
#   3. run the *current* suite (benchmarks/asv_benchmarks) against that install:
#      `asv run --python=same --set-commit-hash <sha>`, with ASV_PYTHONPATH and
#      PYTHONPATH pointing at it and fresh NUMBA_CACHE_DIR / FASTNN_CACHE_DIR, so no
#      compiled kernel or autotune choice leaks from one commit to the next.
# Results accumulate in .asv/results (re-running a commit replaces its numbers);
# finally `asv publish` writes the static dashboard to .asv/html, and
# benchmarks/asv_offline.py makes it load its JavaScript from local copies (no network).
#
# Environment knobs:
#   PYTHON        interpreter of the environment (default: .venv/bin/python, else python3)
#   ASV_MACHINE   machine name recorded with the results (default: hostname)
#   ASV_RUN_ARGS  sampling settings (default: "-a rounds=1 -a repeat=3 -a warmup_time=0.05",
#                 a short but calibrated run; use "--quick" for one sample per benchmark)
#   ASV_BENCH     regular expression selecting benchmarks (asv --bench), default: all
set -euo pipefail

N="${1:-5}"
shift || true
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ]; then
    echo "usage: $0 [N>=1] [extra asv run args...]" >&2
    exit 2
fi

ROOT="$(git rev-parse --show-toplevel)"
cd "$ROOT"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
MACHINE="${ASV_MACHINE:-$(hostname)}"
read -r -a RUN_ARGS <<< "${ASV_RUN_ARGS:--a rounds=1 -a repeat=3 -a warmup_time=0.05}"
BENCH_ARGS=()
if [ -n "${ASV_BENCH:-}" ]; then BENCH_ARGS=(--bench "$ASV_BENCH"); fi

"$PYTHON" -m asv machine --yes --machine "$MACHINE" > /dev/null

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastnn-asv-history.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

mapfile -t SHAS < <(git rev-list --first-parent --max-count="$N" --reverse HEAD)
echo "benchmarking ${#SHAS[@]} commit(s) on machine '$MACHINE'"
for sha in "${SHAS[@]}"; do
    short="${sha:0:8}"
    echo "=== $short $(git log -1 --format=%s "$sha")"
    dir="$WORK/$short"
    mkdir -p "$dir/src" "$dir/site" "$dir/numba-cache" "$dir/fastnn-cache"
    git archive "$sha" | tar -x -C "$dir/src"
    "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation --no-compile \
        --target "$dir/site" "$dir/src" 2> "$dir/pip.log" || { cat "$dir/pip.log" >&2; exit 1; }
    # An editable install of the working tree registers an import hook that would
    # still serve fastnn submodules missing at this commit (e.g. fastnn.model) from
    # the working tree: drop it in every process that sees this site directory.
    cat > "$dir/site/sitecustomize.py" <<'PY'
import sys

sys.meta_path[:] = [
    f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable___fastnn")
]
PY
    # this interpreter must import the commit's fastnn and nothing of the working tree's
    if ! got="$(cd "$dir" && PYTHONPATH="$dir/site" "$PYTHON" -c '
import importlib.util, os, fastnn
print(os.path.dirname(fastnn.__file__))
for name in ("fastnn.tools.bench", "fastnn.model", "fastnn.dispatch.runtime", "fastnn.kernels.numba"):
    spec = importlib.util.find_spec(name)
    if spec is not None and not os.path.dirname(fastnn.__file__) in (spec.origin or ""):
        raise SystemExit(f"{name} would be imported from {spec.origin}")
' 2> "$dir/import.log")"; then
        echo "warning: fastnn does not import cleanly at $short, commit skipped:" >&2
        tail -n 3 "$dir/import.log" >&2
        rm -rf "$dir"
        continue
    fi
    if [ "$got" != "$dir/site/fastnn" ]; then
        echo "error: fastnn imported from $got instead of $dir/site/fastnn" >&2
        exit 1
    fi
    ASV_PYTHONPATH="$dir/site" PYTHONPATH="$dir/site" \
        NUMBA_CACHE_DIR="$dir/numba-cache" FASTNN_CACHE_DIR="$dir/fastnn-cache" \
        "$PYTHON" -m asv run --python=same --machine "$MACHINE" --set-commit-hash "$sha" \
        --show-stderr "${RUN_ARGS[@]}" "${BENCH_ARGS[@]}" "$@" || {
        echo "warning: asv run reported failures for $short (results kept)" >&2
    }
    rm -rf "$dir"
done

"$PYTHON" -m asv publish
# asv's page loads jQuery/Flot/Bootstrap from CDNs: serve local copies instead (offline)
"$PYTHON" "$ROOT/benchmarks/asv_offline.py" "$ROOT/.asv/html"
echo "dashboard written to $ROOT/.asv/html; serve it with: $PYTHON -m asv preview"
