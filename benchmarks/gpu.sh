#!/usr/bin/env bash
# The GPU fast path on one CUDA GPU, in about 6 minutes: DCGAN and ResNet on synthetic
# 32x32 images, non-saturating, fp32 against bf16-mixed against torch.compile (fp32),
# ganzoo against the hand loop (benchmarks/hand_loop.py), each in its own process:
# generator steps/s, images/s (x64, the batch), whole-process and start-up times, peak
# GPU memory. Writes outputs/gpu/<time>.md and prints it.
#
#     bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p outputs/gpu
out=outputs/gpu/$stamp.md
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out.tmp"
# One untimed launch writes the bytecode caches both sides read afterwards.
uv run python benchmarks/hand_loop.py --threads 1 --steps 2 --device cuda data=ring > /dev/null
run() {  # a title, then throughput.py's arguments
  echo -e "\n## $1\n" >> "$out.tmp"
  uv run python benchmarks/throughput.py --device cuda --threads 1 --no-prime \
    --rows dcgan_ns,resnet_ns "${@:2}" >> "$out.tmp"
}
run "fp32" --repeats 2
run "bf16-mixed" --repeats 2 --precision bf16-mixed
run "torch.compile, fp32" --repeats 1 --compile
mv "$out.tmp" "$out"
cat "$out"
