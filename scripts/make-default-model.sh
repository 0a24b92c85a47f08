#!/bin/sh
# The embedded default model, models/default.onnx: trained with configs/default-model.yaml (skipped when the run
# folder already holds a finished run), then calibrated, given operating points and input checks on the recipe's own
# patient split (validation: fitting; the fixed held-out test split: measuring; no film the network trained on is used
# for either), with the checks measured on the real invalid inputs in ../shared/data and on the Debian packages' images
# that scripts/negatives.sh collects. The reports land beside it: models/default.calibration.md (and .json), the card
# (default.card.md) with the test AUROCs by source set and view (default.subgroups) and the transfer table
# (default.transfer); with PREVIOUS=<an earlier default.onnx>, also what the recipe change bought against it, paired on
# the same held-out films (default.compare). Usage: [PREVIOUS=old.onnx] scripts/make-default-model.sh [run] [data]
set -eu
cd "$(dirname "$0")/.."
RUN=${1:-runs/default-model}
DATA=${2:-../shared/data}
CXR="node bin/cxr.js"

if [ ! -f "$RUN/best.onnx" ]; then
  $CXR train --config configs/default-model.yaml --out "$RUN"
fi

# One kind per --negatives; the DICOM folder mixes chest and non-chest files, so those are named one by one.
set -- --negatives "natural photographs=$DATA/natural-photos"
for file in "$DATA"/dicom/neg*.dcm; do set -- "$@" --negatives "non-chest DICOMs (tibia, hip, dental panoramic, CT)=$file"; done
for file in "$DATA"/dicom/*CANINE*.dcm; do set -- "$@" --negatives "dog's lateral thorax (DICOM)=$file"; done
for file in "$DATA"/dicom/*FakeMONO1*.dcm; do set -- "$@" --negatives "header MONOCHROME1, pixels MONOCHROME2 (shown inverted)=$file"; done

NEGATIVES=../.cache/cxr-lens/negatives
bash scripts/negatives.sh "$NEGATIVES" || echo "scripts/negatives.sh failed: the Debian negatives are not measured" >&2
[ -f "$NEGATIVES/manifest.csv" ] && set -- "$@" --negatives-manifest "$NEGATIVES/manifest.csv"

mkdir -p models
# --card: the training run's card is written again beside the model (models/default.card.md, .json and
# .test-report.html) with the new calibration, thresholds and checks and the metrics on this split.
$CXR calibrate --model "$RUN/best.onnx" --config configs/default-model.yaml \
  --card "$RUN/model-card.json" --out models/default.onnx "$@"
node dist/scripts/subgroups.js models/default.onnx models/default.subgroups
node dist/scripts/transfer.js models/default.transfer
parts="subgroups transfer"
if [ -n "${PREVIOUS:-}" ]; then
  node dist/scripts/compare-models.js "$PREVIOUS" models/default.onnx models/default.compare.md "previous default model" "this model" > /dev/null
  parts="compare $parts"
fi
# The comparison, the per-set and per-view AUROCs and the transfer table travel in the card too, one level down.
for part in $parts; do { echo; sed 's/^#/##/' "models/default.$part.md"; } >> models/default.card.md; done
