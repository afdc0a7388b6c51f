"""Fine-tunes a base backbone or a Muppet checkpoint on one task, re-using the pre-finetuned head when there is one.

Head re-use is the default (`--reuse_head false` starts from a fresh head instead):

```bash
# From the pre-finetuned checkpoint of the main job, on a held-out task with 10% of its training data:
python training/finetune.py --model_name_or_path runs/muppet-minilm-offline --task presuppositions_as_nli \
    --train_fraction 0.1 --seed 1 --output_dir runs/ft/muppet-pnli-10-s1

# The same from the base backbone (the baseline), its fresh head reading the encoder as the checkpoint's heads do
# (`--pooling auto`: the mean pooling all-MiniLM-L6-v2 declares, as the recipe's `pooling: auto`; default: first
# token):
python training/finetune.py --model_name_or_path offline:all-MiniLM-L6-v2 --pooling auto \
    --task presuppositions_as_nli --train_fraction 0.1 --seed 1 --output_dir runs/ft/base-pnli-10-s1

# LoRA fine-tuning (a rank-8 adapter on the frozen backbone, the head trained fully), from either kind of model:
python training/finetune.py --model_name_or_path runs/muppet-minilm-offline --task presuppositions_as_nli \
    --lora --lora_r 8 --learning_rate 1e-3 --output_dir runs/ft/muppet-pnli-lora

# A YAML file of these flags works as in prefinetune.py (--config my_finetune.yaml); flags given after it override.

# The protocol of evaluation/: a budget of updates, validation every 25 of them, the best weights kept (early stop
# after 4 evaluations without a gain), then scored on validation and test:
python training/finetune.py --model_name_or_path offline:all-MiniLM-L6-v2 --pooling auto \
    --task presuppositions_as_nli --train_fraction 0.1 --max_train_examples 500 --seed 1 --max_steps 300 \
    --eval_strategy steps --eval_steps 25 --select_best_model --early_stopping_patience 4 \
    --eval_splits validation test --output_dir runs/ft/base-pnli-10-s1-budget
```

The code lives in [`muppet_hf.scripts.finetune`], whose docstring says how heads are re-used, how a LoRA
checkpoint is merged and what the output folder holds.
"""

from muppet_hf.scripts.finetune import run


if __name__ == "__main__":
    run()
