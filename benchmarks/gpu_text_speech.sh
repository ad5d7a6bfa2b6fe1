#!/usr/bin/env bash
# The text recipes at their own length and the digit-string recipe on a GPU, as one prepared script: the
# benchmarks run side by side on one GPU (16 CPU cores), each capped by `timeout`; logs and JSON go to $OUT as one
# archive.
#   VAEKIT_DATA=... OUT=/tmp/out bash benchmarks/gpu_text_speech.sh full    # about 9-10 minutes
#   VAEKIT_DATA=... OUT=/tmp/out bash benchmarks/gpu_text_speech.sh smoke   # about 1.5 minutes: every job, tiny
# Budgets are wall-clock minutes on a shared GPU: each job's JSON says how many steps it reached in them.
# The text recipes get their own length, 20 epochs, capped at 7 minutes: the recipe's 512 units, as far as 7
# minutes go (benchmarks/results/ptb_lstm.json has the 256-unit CPU figure at full length).
# On the device: carry the data (ptb/, fsdd/) and the wheels of vaekit, its plugins and soundfile, cffi and
# pycparser (not in the device's image), install them with pip --target and put that on PYTHONPATH.
set -u
mode=${1:-full} dev=${DEVICE:-cuda}  # DEVICE=cpu: the smoke test on a machine without a GPU
logs=/tmp/gpu-logs; rm -rf "$logs" /tmp/gpu-runs; mkdir -p "$logs"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
if [ "$mode" = smoke ]; then
  limit=${LIMIT:-150} text="--steps 20 --max-minutes 0.3 --eval-examples 40 --iw-samples 10"
  speech="--max-minutes 0.15 --max-steps 10 --audio-strings 1 --classifier-epochs 1"
  text_ae=$text refine="--refine-steps 2"
else
  # PTB's 20 epochs at the recipes' 512 units (26,300 steps at batch 32, 6,580 at 128), cut at 7 minutes; the
  # cosine decay follows whichever ends first. 1,000 test sentences, k = 200.
  limit=${LIMIT:-570} text="--steps 26300 --max-minutes 7 --eval-examples 1000 --iw-samples 200"
  text_ae="--steps 6580 --max-minutes 7 --eval-examples 1000 --iw-samples 20" refine="--refine-steps 100"
  speech="--max-minutes 3.5 --audio-strings 20"
fi
job() {  # job NAME COMMAND...: run in the background with the time limit, output to NAME.log
  local name=$1; shift
  (timeout "$limit" "$@" > "$logs/$name.log" 2>&1; echo "exit $?" >> "$logs/$name.log") &
  pids+=($!)
}
pids=()
B=benchmarks
# The default (kl16) against its LM at the same budget, its NLL also with q(z|x) refined per sentence
# (--refine-steps: the same model, estimated more tightly); the AE-style recipe with batches 4x as large (a GPU step
# costs about the same), for BLEU-4, greedy and by beam search (5 beams).
job text python3 $B/text_ptb.py --device $dev --jobs 2 $text $refine --runs /tmp/gpu-runs/text \
    --out "$logs/text" --settings lm,kl16
job text_ae_b128 python3 $B/text_ptb.py --device $dev --jobs 1 $text_ae --runs /tmp/gpu-runs/text_ae_b128 \
    --out "$logs/text_ae_b128" --settings ae --beam-size 5 --set trainer.batch_size=128 trainer.lr=0.002
# The digit-string recipe (one 32 ms stage, moments conversion) on a GPU.
job strings_seed0 python3 $B/speech_strings.py --device $dev $speech --threads 2 --work /tmp/gpu-runs/strings0 \
    --out "$logs/strings_seed0" seed=0
( while sleep 30; do tar czf "$OUT/part.tgz" -C /tmp gpu-logs 2>/dev/null; done ) &  # what a cut call still returns
saver=$!
sleep 45; [ "$dev" = cuda ] && nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv > "$logs/nvidia-smi.txt"
wait "${pids[@]}"
kill $saver
cp /tmp/gpu-runs/text*/*.log "$logs/" 2>/dev/null
for m in /tmp/gpu-runs/*/*/metrics.jsonl; do cp "$m" "$logs/$(basename "$(dirname "$(dirname "$m")")")_$(basename "$(dirname "$m")").metrics.jsonl"; done 2>/dev/null
tar czf "$OUT/gpu-logs.tgz" -C /tmp gpu-logs && rm -f "$OUT/part.tgz"
cat "$logs/nvidia-smi.txt" 2>/dev/null
for f in "$logs"/*.log; do echo "== $(basename "$f"): $(tail -n 2 "$f" | tr '\n' ' ' | cut -c1-600)"; done
