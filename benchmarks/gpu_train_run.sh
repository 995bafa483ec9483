#!/usr/bin/env bash
# The GPU machine's training measurements in one go (one H200, JAX, no TensorFlow, no internet):
# IResNet-50 throughput (batch 128/256/512, bfloat16 and float32) and a short real training run
# with its loss curve, on Keras 3's JAX backend. Everything it needs is carried in artifacts/gpu/
# (docs/training.md, "On the GPU machine", says how to make it and the device-tool command).
# Writes under $OUT: env.txt, train-throughput-jax.json, gpu-train-run.json, log.txt.
# At most about 11 minutes; each part has its own time limit so one that hangs cannot eat the rest.
set -uo pipefail
OUT=${OUT:-artifacts/gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

CARRY=artifacts/gpu
# Keras and the two packages it needs that the machine's image lacks, installed from the
# carried wheels only (never from an index).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$CARRY"/wheels/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2

{
    date -u
    nvidia-smi -L
    python3 --version
    python3 -c "import jax, keras, cv2; print('jax', jax.__version__, jax.devices()); print('keras', keras.__version__, keras.backend.backend()); print('cv2', cv2.__version__)"
} | tee "$OUT/env.txt" || exit 1

# 6 rows, each a fresh process (compilation + 3 untimed steps, 15 timed), at most 75 s each;
# the JSON is rewritten after every row.
timeout 480 python3 benchmarks/train_throughput.py --backend jax --backbone iresnet50 \
    --batch-sizes 128,256,512 --precisions bfloat16,float32 --steps 15 --warmup 3 --timeout 75 \
    --json "$OUT/train-throughput-jax.json"

# The short real run: MobileFaceNet on the carried LFW pack (4,324 faces, 158 people), bfloat16.
timeout 150 python3 benchmarks/gpu_train_run.py train --data "$CARRY/lfw158-64.rec" \
    --json "$OUT/gpu-train-run.json" --epochs 30 --batch-size 256 --log-every 5

date -u
