"""Training: the loop and what it needs. Imports vaekit.evaluation and below.

- trainer: the seeded training loop (optimizer, schedule, bf16, DDP, evaluation, logs, samples); over 400 lines
  for now, while it is split by concern into the modules below;
- run_folder: the run folder (created and locked, checked before each write, recipe.yaml, metrics.jsonl, the
  resume command); checkpointing: saving, pruning and restoring checkpoints (Checkpointer); divergence: the
  NaN/blow-up guard (DivergenceGuard); best_weights: keep_best and patience (BestWeights); training_errors:
  TrainingError;
- warm_start: starting from another run's weights; aggressive: aggressive inference-network updates;
- stop_signals: a signal turned into a clean stop; memory: keeping freed memory inside the process.
"""
