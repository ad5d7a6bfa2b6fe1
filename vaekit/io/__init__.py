"""The bottom layer: files and messages. Imports nothing else of the engine.

- messages: one-line errors (one_line, quote, did_you_mean);
- safe_writes: atomic writes never made through a link, run-folder locks, a failed write named (WriteError);
- checkpoint: pretrained folders and training checkpoints as safetensors + JSON, written atomically and read
  back without unpickling (building the model they hold is vaekit.runs, above the plugins).
"""
