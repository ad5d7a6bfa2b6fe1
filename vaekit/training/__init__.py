"""Training: the loop and each concern around it. Imports vaekit.evaluation and below.

- trainer: the seeded training loop (set-up, resume, the steps, the run's end; `train`, `Trainer`);
- training_setup: device, processes, model, optimizer and aggressive inference's state built for a run;
  training_step: one step (the update, and aggressive inference's inner loop); training_log: the train records;
- run_folder: the run folder (created and locked, checked before each write, recipe.yaml, metrics.jsonl, the
  resume command); checkpointing: saving, pruning and restoring checkpoints (Checkpointer); best_weights:
  keep_best and patience (BestWeights); divergence: the NaN/blow-up guard (DivergenceGuard);
- training_schedule: run length, LR and KL weight; training_clock: max_minutes and trainer.clock; training_data:
  the data's order and loader; training_evaluation: validation, samples, the fitted latent sampler;
- stop_signals: a signal turned into a clean stop; training_errors: TrainingError;
- warm_start: starting from another run's weights; aggressive: aggressive inference-network updates;
  memory: keeping freed memory inside the process.
"""
