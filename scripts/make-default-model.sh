#!/bin/sh
# The embedded default model, models/default.onnx: trained with configs/default-model.yaml (skipped when the run
# folder already holds a finished run), then calibrated, given operating points and input checks on the recipe's own
# patient split, with the checks measured on the real invalid inputs in ../shared/data. The report lands beside it:
# models/default.calibration.md (and .json). Usage: scripts/make-default-model.sh [run folder] [data folder]
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

mkdir -p models
$CXR calibrate --model "$RUN/best.onnx" --config configs/default-model.yaml --out models/default.onnx "$@"
