#!/usr/bin/env bash
# The distillation study (issue 32, item 5): the same short student recipe twice, without and with a
# teacher, then both arms measured on the same held-out photos (training/studies/distill_eval.py).
#
#   training/studies/distill_study.sh ROOT TEACHER.onnx      # e.g. runs/distill resources/models/carvalue.onnx
#
# Arms: ROOT/base (no teacher), ROOT/distill (--teacher TEACHER, its cached targets of the whole photo) and
# ROOT/crop (--teacher TEACHER --distill-targets crop: the teacher run on each batch as the student sees it),
# identical otherwise: stage 1 of
# training/recipe.sh cut to EPOCHS (4) epochs, all at 160 px (the model file says 224 px), seed 0, the
# split's training photos. ARMS="base distill" (the default; or "crop") picks which arms to train (both at once: PARALLEL=1, one
# thread each). Every step resumes: run the same command again after an interruption.
# The reports are ROOT/distill-eval.json (+ .md; base against distill) and ROOT/crop-eval.json (base against
# crop), each made once both of its arms are trained; wall clocks in ROOT/timings.tsv.
set -euo pipefail
root=${1:?usage: distill_study.sh ROOT TEACHER.onnx}
teacher=${2:?usage: distill_study.sh ROOT TEACHER.onnx}
data=${DATA:-../shared/data/stanford-cars-train}
epochs=${EPOCHS:-4}
arms=${ARMS:-base distill}
py=.venv/bin/python
train=(.venv/bin/carvalue-train train --data "$data" --batch-size 32 --micro-batch 8 --weight-decay 0.02
       --label-smoothing 0.1 --fold-bn --freeze-blocks 4 --workers 1 --threads "${THREADS:-1}" --seed 0 --no-progress
       --device cpu --epochs "$epochs" --low-res-size 160 --low-res-epochs "$epochs" --size 224 --lr 3e-4
       --warmup-steps 100 --probe-init)
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:--1} \
  MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-1000000000}
mkdir -p "$root"
timings=$root/timings.tsv
[[ -f $timings ]] || printf 'step\tstart\tend\tseconds\n' > "$timings"

arm() {  # arm NAME FLAGS...: train one arm (skipped when its marker exists), log its wall clock
  local name=$1; shift
  local out=$root/$name
  if [[ -e $out/trained ]]; then echo "== $name: trained, skipped"; return; fi
  echo "== $name ($(date -u +%H:%M:%S))"
  local t0; t0=$(date +%s)
  "${train[@]}" --out "$out" "$@" > "$root/$name.log" 2>&1
  touch "$out/trained"
  local t1; t1=$(date +%s)
  printf '%s\t%s\t%s\t%s\n' "$name" "$(date -u -d "@$t0" +%FT%TZ)" "$(date -u -d "@$t1" +%FT%TZ)" $((t1 - t0)) >> "$timings"
}

pids=()
for a in $arms; do
  case $a in
    base) flags=() ;;
    distill) flags=(--teacher "$teacher" --distill-alpha "${ALPHA:-1.0}" --distill-temperature "${TEMPERATURE:-2.0}") ;;
    crop) flags=(--teacher "$teacher" --distill-alpha "${ALPHA:-1.0}" --distill-temperature "${TEMPERATURE:-2.0}"
                 --distill-targets crop) ;;
    *) echo "unknown arm $a (base, distill or crop)" >&2; exit 2 ;;
  esac
  if [[ ${PARALLEL:-0} == 1 ]]; then arm "$a" "${flags[@]}" & pids+=($!); else arm "$a" "${flags[@]}"; fi
done
for p in "${pids[@]}"; do wait "$p"; done
for taught in distill crop; do
  report=$root/$([[ $taught == distill ]] && echo distill-eval || echo crop-eval)
  if [[ -e $root/base/trained && -e $root/$taught/trained && ! -e $report.json ]]; then
    $py -m training.studies.distill_eval --runs "$root/base" "$root/$taught" --teacher "$teacher" --out "$report"
  fi
done
