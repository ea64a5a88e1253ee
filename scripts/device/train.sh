#!/bin/bash
# Call 2 of a GPU session (see scripts/device/README.md): unpack the carried dataset, train the default (warp) preset
# from the shipped model for MINUTES, export the fp16 model(s) and time the last one. Everything the call returns is
# in $OUT. Arguments after BATCH go to `talkinghead train` (e.g. --set loss.gen_outside=6); CKPT_EVERY=N also
# exports the intermediate checkpoints (every N steps) as gpu_model_stepN.safetensors; AVERAGE_FROM="M1 M2 ..."
# exports instead the mean of the checkpoints from step M to the last as gpu_model_meanM.safetensors (up to 3-4: at
# most 8 files come back).
set -u -o pipefail
MINUTES=${1:-7.5}
BATCH=${2:-32}
shift 2 2>/dev/null
export PYTHONPATH=$PWD/src:$PWD/scripts/device PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
t0=$(date +%s)
python3 scripts/pack_dataset.py unpack .gpu/data ${DS:-/tmp/ds} --workers ${WORKERS:-16} 2>&1 | tail -3 || exit 1
echo "unpacked in $(( $(date +%s) - t0 )) s"
extra=()
if [ -f /root/keep/default.safetensors ]; then extra+=(--init /root/keep/default.safetensors); else echo "NO INIT: from scratch"; fi
if [ -f /root/keep/facenet.safetensors ]; then extra+=(--set loss.facenet_weights=/root/keep/facenet.safetensors)
else echo "NO FACENET: identity term off"; extra+=(--set loss.face=0); fi
python3 -m talkinghead train --data ${DS:-/tmp/ds} --out /tmp/run --device "${DEVICE:-cuda}" --batch-size "$BATCH" --steps 1000000 \
  --max-minutes "$MINUTES" --no-progress --set workers=${WORKERS:-14} --set compile=off --set adversarial_from=1000000 \
  --set loss.hed_weights=.gpu/w2/vgg16_hed.safetensors --set loss.face_every=1 --set log_every=20 \
  --set sample_every=1000000 --set checkpoint_every=${CKPT_EVERY:-1000000} --set keep_checkpoints=20 "${extra[@]}" "$@" \
  > "$OUT/train.log" 2>&1
tail -5 "$OUT/train.log"
cp /tmp/run/metrics.jsonl /tmp/run/config.json "$OUT/" 2>/dev/null
python3 scripts/export_default_model.py /tmp/run --out "$OUT/gpu_model.safetensors"
last=$(ls -d /tmp/run/checkpoints/step-* | tail -1)
if [ -n "${AVERAGE_FROM:-}" ]; then  # means of the checkpoints from each of these steps to the last
  for m in $AVERAGE_FROM; do
    python3 scripts/export_default_model.py /tmp/run --average-from "$m" --out "$OUT/gpu_model_mean$m.safetensors"
  done
else
  for ck in $(ls -d /tmp/run/checkpoints/step-* | head -n -1 | tail -3); do
    n=$((10#${ck##*step-})); python3 scripts/export_default_model.py /tmp/run --step "$n" --out "$OUT/gpu_model_step$n.safetensors"
  done
fi
echo "last checkpoint: $last"
python3 benchmarks/render_speed.py --data ${DS:-/tmp/ds} --model "$OUT/gpu_model.safetensors" --device "${DEVICE:-cuda}" --batches 1,8,32,64 \
  --json "$OUT/render_speed_gpu_model.json"
python3 - <<'PY'
import json; rows = [json.loads(l) for l in open("/tmp/run/metrics.jsonl")]
for r in rows[:: max(1, len(rows) // 12)] + rows[-1:]:
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
PY
