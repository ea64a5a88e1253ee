#!/bin/bash
# Call 1 of a GPU session (see scripts/device/README.md): keep the carried FaceNet copy and the model to start from
# on the machine for call 2 and check that talkinghead's training imports there. With FULL=1 it also times that
# model on the GPU (benchmarks/render_speed.py; SPEED=0 skips it) and smoke-tests 30 training steps on the mini
# dataset (its arguments go to `talkinghead train`, as train.sh's do).
set -u
export PYTHONPATH=$PWD/src:$PWD/scripts/device PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
# the model to start from: a copy carried in .gpu/w1 (when the tracked one is left behind to save upload) or the tracked one
model=.gpu/w1/default.safetensors; [ -f $model ] || model=src/talkinghead/assets/default.safetensors
mkdir -p /root/keep && cp .gpu/w1/facenet.safetensors $model /root/keep/ && ls -la /root/keep
python3 -c "import torch, cv2, talkinghead.training.metalearn; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__)" || exit 1
[ "${FULL:-0}" = 1 ] || exit 0
[ "${SPEED:-1}" = 1 ] && python3 benchmarks/render_speed.py --data .gpu/w1/mini --model /root/keep/default.safetensors --device "${DEVICE:-cuda}" --batches 1,8,32,64 --json "$OUT/render_speed_shipped.json" 2>&1 | tee "$OUT/render_speed_shipped.txt"
# 30 training steps on the mini dataset: CUDA, bf16, FaceNet from the carried copy, data-loading workers
timeout 240 python3 -m talkinghead train --data .gpu/w1/mini --out /tmp/smoke --device "${DEVICE:-cuda}" --batch-size ${SMOKE_BATCH:-16} --steps ${SMOKE_STEPS:-30} \
  --init /root/keep/default.safetensors --no-progress --set workers=${WORKERS:-8} --set compile=off --set loss.vgg=0 \
  --set loss.facenet_weights=/root/keep/facenet.safetensors --set loss.face_every=1 --set log_every=5 \
  --set adversarial_from=1000000 --set sample_every=1000 --set checkpoint_every=1000 "$@" 2>&1 | tail -5
tail -n 2 /tmp/smoke/metrics.jsonl
