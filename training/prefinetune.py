"""Muppet pre-finetuning (Aghajanyan et al., arXiv 2101.11038) of a backbone on many tasks at once.

A YAML recipe supplies the defaults and command-line flags override them:

```bash
# Tiny random backbone on the three tiny tasks shipped in training/data/tiny (seconds, CPU, no download):
python training/prefinetune.py --config training/recipes/tiny.yaml

# Two CPU processes (gloo), as CI runs it. With accelerate 1.x, `--num_processes 2 --cpu` alone starts one process
# (its CPU launcher needs mpirun); `--multi_gpu` starts two through torchrun and the recipe's `use_cpu` picks gloo:
accelerate launch --multi_gpu --num_processes 2 training/prefinetune.py --config training/recipes/tiny.yaml

# Several GPUs with DDP, or FSDP:
accelerate launch --config_file training/accelerate_configs/multi_gpu.yaml training/prefinetune.py \
    --config training/recipes/<recipe>.yaml
accelerate launch --config_file training/accelerate_configs/fsdp.yaml training/prefinetune.py \
    --config training/recipes/<recipe>.yaml --output_dir runs/muppet
```

The code lives in [`muppet_hf.scripts.prefinetune`], whose docstring lists what the output folder holds.
"""

from muppet_hf.scripts.prefinetune import run


if __name__ == "__main__":
    run()
