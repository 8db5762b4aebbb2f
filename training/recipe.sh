#!/usr/bin/env bash
# The whole CPU recipe for the Stanford Cars model, from the ImageNet trunk to the model file the
# app ships, in one command, with every step's wall clock in $ROOT/timings.tsv.
#
#   training/recipe.sh split ROOT            # the split run: chooses and measures the recipe
#   training/recipe.sh all ROOT SPLIT.onnx   # every photo but validation; SPLIT.onnx = the split
#                                            # run's ROOT/split-model.onnx (its held-out figures)
#
# For trying a faster variant (the defaults are the recipe that made the bundled model):
# EPOCHS1 (LOW_RES_EPOCHS1 of them at 160 px), EPOCHS2, EPOCHS3: the stages' lengths (16 (16), 8, 2);
# SIZE2: stage 2's input size (224);
# MICRO_BATCH (8); CPU_AMP=1 trains in bf16 autocast (--cpu-amp; needs a CPU with native bf16).
# WORKERS: DataLoader workers (2: feeds the framed stages faster than 1 and changes no sample).
# DEVICE=cuda|cpu (default auto: a GPU when there is one; not a recipe setting).
# The model file is ROOT/part-rule/carvalue.onnx with MODEL_CARD.md beside it, named after ROOT
# (NAME=... to choose); REFERENCE_REPORTS=DIR names where the split run's reports are kept.
#
# Each step is resumable: running the same command again resumes the training stage it stopped
# in (mid-epoch) and skips the steps whose output exists. Commands and the why: RECIPES.md.
# Needs: scripts/setup.sh dev,train and `python -m training.loop.pretrained convert` (once).
set -euo pipefail
mode=${1:?usage: training/recipe.sh split|all ROOT [SPLIT.onnx]}
root=${2:?usage: training/recipe.sh split|all ROOT [SPLIT.onnx]}
data=${DATA:-../shared/data/stanford-cars-train}
name=${NAME:-$(basename "$root")}
epochs1=${EPOCHS1:-16} low1=${LOW_RES_EPOCHS1:-16} epochs2=${EPOCHS2:-8} epochs3=${EPOCHS3:-2} size2=${SIZE2:-224}
amp=(); [[ ${CPU_AMP:-0} == 1 ]] && amp=(--cpu-amp)
# HOLD_OUT_FAMILIES="Toyota Camry,BMW 3 Series": a leave-family-out run (those families never seen);
# UNTIL=STEP stops after that step (e.g. UNTIL=framing for a run only measured, never shipped).
fam=(); [[ -n ${HOLD_OUT_FAMILIES:-} ]] && fam=(--hold-out-families "$HOLD_OUT_FAMILIES")
# LOSS_MAKE=W: every training stage also learns the make, weighted W (--loss-make; off by default).
makeloss=(); [[ -n ${LOSS_MAKE:-} ]] && makeloss=(--loss-make "$LOSS_MAKE")
# The last stage's resolution was picked on the split run with its test figures seen: every card says so.
choice="The last training stage's resolution (288 px) was chosen after a 288-px and a 224-px version of it had both \
been measured on the split run's 733 test photos, so the split run's held-out figures are not free of that choice \
(training/RECIPES.md)."
py=.venv/bin/python
train=(.venv/bin/carvalue-train train --data "$data" --batch-size 32 --micro-batch "${MICRO_BATCH:-8}"
       --weight-decay 0.02 --label-smoothing 0.1 --fold-bn --freeze-blocks 4 --workers "${WORKERS:-2}" --seed 0 --no-progress --device "${DEVICE:-auto}"
       "${makeloss[@]}")
case $mode in
  split) part=(); final_export=(--confidence energy) ;;
  all) ref=${3:?all needs the split-run model file}
       part=(--test-fraction 0); final_export=(--confidence energy --reference "$ref") ;;
  *) echo "mode must be split or all" >&2; exit 2 ;;
esac
mkdir -p "$root"
# glibc: keep freed training buffers for reuse instead of returning them to the kernel each step
# (fewer page faults; the same arithmetic). One 80-step pair of stage 1 at 160 px here: 90 img/s
# against 83 without
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:--1} \
  MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-1000000000}
timings=$root/timings.tsv
[[ -f $timings ]] || printf 'step\tstart\tend\tseconds\n' > "$timings"

step() {  # step NAME OUTPUT COMMAND...: run unless OUTPUT exists (a file the step writes, or a
          # marker touched when it succeeds), and log its wall clock (of the last, resumed, part)
  local name=$1 output=$2; shift 2
  if [[ -e $output ]]; then echo "== $name: $output exists, skipped"; [[ ${UNTIL:-} != "$name" ]] || exit 0; return; fi
  echo "== $name ($(date -u +%H:%M:%S))"
  local t0; t0=$(date +%s)
  "$@"
  [[ -e $output ]] || touch "$output"  # a training stage's marker
  local t1; t1=$(date +%s)
  printf '%s\t%s\t%s\t%s\n' "$name" "$(date -u -d "@$t0" +%FT%TZ)" "$(date -u -d "@$t1" +%FT%TZ)" $((t1 - t0)) >> "$timings"
  if [[ ${UNTIL:-} == "$name" ]]; then echo "== stopped after $name (UNTIL)"; exit 0; fi
}

s1=$root/stage1 s2=$root/stage2 s3=$root/stage3 framing=$root/framing
step stage1 "$s1/trained" "${train[@]}" "${amp[@]}" "${fam[@]}" "${part[@]}" --out "$s1" \
  --epochs "$epochs1" --low-res-size 160 --low-res-epochs "$low1" --size 224 --lr 3e-4 --warmup-steps 100 --probe-init
step export1 "$s1/model/carvalue.onnx" .venv/bin/carvalue-train export "$s1" --out "$s1/model/carvalue.onnx" \
  --confidence energy --no-quantize --unmeasured
step stage2 "$s2/trained" "${train[@]}" "${amp[@]}" "${fam[@]}" "${part[@]}" --out "$s2" \
  --init model --pretrained-path "$s1/model/carvalue.onnx" --epochs "$epochs2" --size "$size2" --lr 1e-4 --warmup-steps 50 --framed 0.5
step export2 "$s2/model/carvalue.onnx" .venv/bin/carvalue-train export "$s2" --out "$s2/model/carvalue.onnx" \
  --confidence energy --no-quantize --unmeasured
step stage3 "$s3/trained" "${train[@]}" "${amp[@]}" "${fam[@]}" "${part[@]}" --out "$s3" \
  --init model --pretrained-path "$s2/model/carvalue.onnx" --epochs "$epochs3" --size 288 --lr 5e-5 --warmup-steps 20 --framed 0.5 --notes "$choice"
step export3 "$s3/model/carvalue.onnx" .venv/bin/carvalue-train export "$s3" --out "$s3/model/carvalue.onnx" \
  --name "$name" "${final_export[@]}"
step price "$s3/model/price-attached" $py -m training.price.model_fit attach "$s3/model/carvalue.onnx"
step framing "$framing/carvalue.onnx" $py -m training.framing.heads build --model "$s3/model/carvalue.onnx" \
  --data "$data" --split "$s3/split.json" --out "$framing" --epochs 12
# The whole-car check on natural photos (no car / part of a car / whole car): features, then the head.
natural=${NATURAL:-../shared/data/natural-photos} wc=$root/whole-car
step whole_car_features "$wc/features-test.npz" $py -m training.framing.whole_car features --model "$framing/carvalue.onnx" \
  --data "$data" --split "$s3/split.json" --natural "$natural" --out "$wc" --train-cars 1600 --inner --natural-backgrounds
step whole_car "$wc/carvalue.onnx" $py -m training.framing.whole_car_head build --features "$wc" \
  --model "$framing/carvalue.onnx" --out "$wc/carvalue.onnx" --layout inner
# The part-of-a-car rule (found car's shape, top class probability, whole-car score) on validation cars.
rule=$root/part-rule
step part_rule "$rule/carvalue.onnx" $py -m training.framing.part_rule --model "$wc/carvalue.onnx" \
  --data "$data" --split "$s3/split.json" --out "$rule/carvalue.onnx"
# The second look at the box found where the first pass sees no whole car, decided on validation.
look=$root/second-look
step second_look "$look/carvalue.onnx" $py -m training.framing.second_look --model "$rule/carvalue.onnx" \
  --data "$data" --split "$s3/split.json" --natural "$natural" --out "$look/carvalue.onnx"
framing=$look  # the model file from here on
echo "model file: $framing/carvalue.onnx (training took $(awk -F'\t' 'NR>1 {s+=$4} END {printf "%.1f", s/60}' "$timings") min)"
# Reports (not part of making the model): held-out framing/non-car figures written into the file.
report=$root/framing-report
step framing_report "$report/report.json" $py -m training.framing.report --model "$framing/carvalue.onnx" \
  --data "$data" --split "$s3/split.json" --out "$report" --record
step card "$framing/MODEL_CARD.md" $py -m training.release.model_card "$framing/carvalue.onnx" \
  --reference-reports "${REFERENCE_REPORTS:-}"
if [[ $mode == split ]]; then
  cp "$framing/carvalue.onnx" "$root/split-model.onnx"
  step price_check "$root/price_stanford.json" $py -m training.price.check --model "$root/split-model.onnx" \
    --out "$root/price_stanford.json"  # training/reports/price_stanford.json: the bundled model's split run's
fi
