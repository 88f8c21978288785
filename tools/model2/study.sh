#!/usr/bin/env bash
# The whole kvsieve-eval study of docs/results.md on a --data-file model (issue 13, item 5): the
# T sweep with the fixed policies at matched memory, ablations, stability, the 16-snippet sample
# and the field's policies, two processes at a time (one OpenMP thread each), then the figures
# and the Markdown tables.
#
# Usage: tools/model2/study.sh [MODEL] [DATA] [OUT] [FIGURES]
#   MODEL    default models/docs-llama
#   DATA     default /work/data/model2/heldout.jsonl (tools/model2/build_corpus.py)
#   OUT      CSV folders, default docs/figures/data/docs-llama
#   FIGURES  default docs/figures/docs-llama; the tables go to FIGURES/tables.md
# Environment: EVAL (default build/default/examples/eval/kvsieve-eval), PYTHON (one with
# matplotlib, default /work/venv/bin/python), EXTRA (more kvsieve-eval options for every run).
# Retrieval contexts go to 3,072 bytes: with 8 questions that is ~1,650 of the model's 2,048
# positions (kvsieve-eval refuses a longer one).
set -euo pipefail
model=${1:-models/docs-llama}
data=${2:-/work/data/model2/heldout.jsonl}
out=${3:-docs/figures/data/docs-llama}
figures=${4:-docs/figures/docs-llama}
eval_bin=${EVAL:-build/default/examples/eval/kvsieve-eval}
python=${PYTHON:-/work/venv/bin/python}
die() { echo "study.sh: $*" >&2; exit 1; }
[ -x "$eval_bin" ] || die "no $eval_bin (cmake --build --preset default)"
[ -f "$data" ] || die "no $data (tools/model2/build_corpus.py)"
mkdir -p "$out" "$figures"
export OMP_NUM_THREADS=1
# shellcheck disable=SC2206
common=(--model "$model" --data-file "$data" --retrieval-lengths 256,512,1024,2048,3072
        --retrieval-prompts 2 ${EXTRA:-})
large=(--snippets 16 --gen-prompts 16 --profile-lengths 128)

run() {
  local name=$1
  shift
  local t0=$SECONDS
  if ! "$eval_bin" "${common[@]}" "$@" --out "$out/$name" > "$out/$name.log" 2>&1; then
    tail -5 "$out/$name.log" >&2
    echo "study.sh: $name failed (log: $out/$name.log)" >&2
    return 1
  fi
  echo "$name: $((SECONDS - t0)) s"
}
failed=0
wait_all() { # the runs started in the background since the last call
  local p
  for p in $(jobs -p); do wait "$p" || failed=1; done
  [ "$failed" = 0 ] || { echo "study.sh: a run failed" >&2; exit 1; }
}

run main-fixed --groups main,fixed &
run ablation --groups ablation &
wait_all
run stability --groups stability &
run large-main --groups main "${large[@]}" &
wait_all
run large-fixed-a --groups fixed "${large[@]}" --fixed-ratios 0.1,0.2,0.3 --windows 28,60,124 &
run large-fixed-b --groups fixed "${large[@]}" --fixed-ratios 0.5,0.7,0.9 --windows 252,380 &
wait_all
run peers-a --groups peers --budgets 24,48,80,120 &
run peers-b --groups peers --budgets 8,160,240 &
wait_all

"$python" tools/plot_results.py "$out/main-fixed" "$out/ablation" "$out/stability" \
  --samples "$out/large-main" "$out/large-fixed-a" "$out/large-fixed-b" \
  --peers "$out/peers-a" "$out/peers-b" --held-out "$(basename "$data")" \
  --subject "held-out $(basename "$model") data" --out "$figures" --tables > "$figures/tables.md"
echo "study.sh: CSVs in $out, figures and tables.md in $figures"
