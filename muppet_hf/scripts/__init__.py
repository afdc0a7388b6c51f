"""The training scripts' code: `training/prefinetune.py` and `training/finetune.py` are thin launchers of these.

Each module has `parse_args(argv)`, `main(script_args, training_args)` and `run(argv)` (the command line: parse, run,
tear down the process group). Importing them pulls in `transformers.Trainer`, so this package imports nothing itself.
"""
