"""Training: the loop and what it needs. Imports vaekit.evaluation and below.

- trainer: the seeded training loop (optimizer, schedule, bf16, DDP, evaluation, checkpoints, samples); over
  400 lines for now: it is to be split by concern once the fault fixes under way in it have landed;
- run_folder: the run folder (created and locked, checked before each write, recipe.yaml, metrics.jsonl, the
  resume command); training_errors: TrainingError;
- warm_start: starting from another run's weights; aggressive: aggressive inference-network updates;
- stop_signals: a signal turned into a clean stop; memory: keeping freed memory inside the process.
"""
