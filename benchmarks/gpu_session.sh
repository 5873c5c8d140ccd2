#!/usr/bin/env bash
# One device call for a session with a lent GPU: build with CUDA, run the GPU tests, then the
# GPU benchmark suite against PyTorch. Everything lands in $OUT (default: ./gpu-out).
#   run: bash benchmarks/gpu_session.sh            (on the GPU machine, from the repo root)
set -uo pipefail
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
# The GPU image has no network: pure-Python and small wheels the package needs come in wheels/
# (git-ignored; fill it with `pip download scipy-openblas32 safetensors tqdm pytest-benchmark
# py-cpuinfo --only-binary=:all: --python-version 3.12 --no-deps -d wheels`, carry it along).
for pkg in scipy_openblas32 safetensors tqdm pytest_benchmark cpuinfo; do
  python3 -c "import $pkg" 2>/dev/null || NEED=1
done
if [ -n "${NEED:-}" ] && [ -d wheels ]; then
  python3 -m pip install -q --no-index --find-links wheels scipy-openblas32 safetensors tqdm pytest-benchmark \
    py-cpuinfo > "$OUT/pip.log" 2>&1
fi
python3 -c "import cupy, torch; print('cupy', cupy.__version__, 'torch', torch.__version__)" > "$OUT/versions.txt" 2>&1
# Development build against this machine's Python (no install; modules land in python/likeable).
cmake -S . -B build/gpu -G Ninja -DLIKEABLE_ENABLE_CUDA=ON -DPython_EXECUTABLE="$(command -v python3)" \
      > "$OUT/build.log" 2>&1 && cmake --build build/gpu -j"$(nproc)" >> "$OUT/build.log" 2>&1 \
  || { echo "build failed"; tail -50 "$OUT/build.log"; exit 1; }
export PYTHONPATH="$PWD/python"
python3 -m pytest -q -p no:cacheprovider tests/gpu -x -rs > "$OUT/test_gpu.log" 2>&1
echo "tests: $(tail -1 "$OUT/test_gpu.log")"
python3 -m pytest -q -p no:cacheprovider benchmarks/test_bench_gpu.py --benchmark-json="$OUT/bench_gpu.json" \
  > "$OUT/bench_gpu.log" 2>&1
echo "bench: $(tail -1 "$OUT/bench_gpu.log")"
sed -n '/speed-ups against/,$p' "$OUT/bench_gpu.log"
