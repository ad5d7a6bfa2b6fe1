#!/usr/bin/env bash
# Every GPU benchmark as one prepared script: the benchmarks run side by side on one GPU
# (16 CPU cores), each capped by `timeout`, then their logs and JSON go to $OUT as one archive.
#   VAEKIT_DATA=... OUT=/tmp/out bash benchmarks/gpu_session.sh [seconds per job, default 500]
# Budgets are wall-clock minutes on a shared GPU: each job's JSON says what it reached in them.
set -u
limit=${1:-500}
logs=/tmp/gpu-logs; mkdir -p "$logs"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
job() {  # job NAME COMMAND...: run in the background with the time limit, output to NAME.log
  local name=$1; shift
  (timeout "$limit" "$@" > "$logs/$name.log" 2>&1; echo "exit $?" >> "$logs/$name.log") &
}
B=benchmarks
for v in baseline vamp iaf vamp_iaf; do
  job "mnist_$v" python3 $B/image_mnist_latents.py --device cuda --variants $v --max-minutes 3.5 \
      --iw-samples 1000 --test-examples 1000 --out "$logs/mnist_$v"
done
for v in vae beta_vae beta_tcvae; do
  job "shapes_$v" python3 $B/shapes_disentanglement.py --device cuda --variants $v --max-minutes 1 \
      --test-examples 2000 --out "$logs/shapes_$v"
done
job quality python3 $B/mnist_sample_quality.py --device cuda --steps 3000 --max-minutes 2 --samples 5000 \
    --classifier-examples 20000 --out "$logs/quality"
for part in cifar superres transfer folder; do
  job "image_$part" python3 $B/image_cifar10.py --device cuda --parts $part --max-minutes 4 --sr-minutes 3 \
      --transfer-minutes 2 --folder-minutes 4 --test-examples 2000 --quality-examples 1000 \
      --classifier-examples 10000 --speed-seconds 10 --work-dir "/tmp/image_$part" --out "$logs/image_$part"
done
job text python3 $B/text_ptb.py --device cuda --jobs 8 --steps 8000 --max-minutes 4 --eval-examples 1000 \
    --iw-samples 100 --runs /tmp/text_ptb --out "$logs/text_ptb" \
    --settings lm,kl5,kl10,kl15,kl25,kl40,ae,transformer
job speech_fsdd python3 $B/speech_fsdd.py --device cuda --max-minutes 1.5 --threads 2 --score-audio \
    --work /tmp/bf --out "$logs/speech_fsdd"
for w in 0 1; do  # without and with the condition adversary (latent.condition_adversary)
  job "speech_strings_adv$w" python3 $B/speech_strings.py --device cuda --max-minutes 3.5 --threads 2 \
      --work "/tmp/bs$w" --out "$logs/speech_strings_adv$w" "latent.condition_adversary=$w"
done
sleep 20; nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv > "$logs/nvidia-smi.txt"
wait
tar czf "$OUT/gpu-logs.tgz" -C /tmp gpu-logs
for f in "$logs"/*.log; do echo "== $(basename "$f"): $(tail -n 1 "$f")"; done
