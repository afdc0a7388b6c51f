#!/usr/bin/env bash
# GPU checks of muppet_hf, for a machine with CUDA GPUs; about 5-10 minutes in all. Not yet run: no GPU was lent to
# this project's builds, so this script was checked by reading only.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, with the package installed (scripts/setup_env.sh)
#   PYTHON=.venv/bin/python OUT=runs/gpu_check bash benchmarks/gpu_check.sh
#
# 1. benchmarks/throughput.py in bf16 on one GPU: the real MiniLM on the offline suite when its cache is there
#    ($MUPPET_HF_CACHE, built by `muppet-hf data build offline-suite`), else the --quick tiny model (the figures
#    then only show that the path runs).
# 2. With two or more GPUs: the tiny recipe on 2 GPUs with DDP (bf16, NCCL), then with FSDP2
#    (training/accelerate_configs/fsdp.yaml), each checking that both processes trained and drew different tasks.
# It prints the figures and leaves the logs and JSON files in $OUT. Without a CUDA GPU it stops at once, status 2.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
OUT=${OUT:-runs/gpu_check}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export TOKENIZERS_PARALLELISM=false

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); nothing was run." >&2
    exit 2
fi
GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
mkdir -p "$OUT"
echo "== $GPUS GPU(s): $("$PYTHON" -c "import torch; print(torch.cuda.get_device_name(0), torch.__version__)")"

# 1. Throughput, bf16, one GPU.
CACHE=${MUPPET_HF_CACHE:-$HOME/.cache/muppet_hf}
if [ -d "$CACHE/offline_suite" ] && [ -d "$CACHE/backbones" ]; then
    MODE=()
    echo "== 1. throughput (bf16): MiniLM on the offline suite"
else
    MODE=(--quick)
    echo "== 1. throughput (bf16): no offline suite in $CACHE, so the --quick tiny model (a smoke test, not figures)"
fi
timeout 420 "$PYTHON" benchmarks/throughput.py --device cuda ${MODE[@]+"${MODE[@]}"} --output "$OUT/throughput_cuda.json" \
    2>&1 | tee "$OUT/throughput.log" | grep -v -e "it/s]" -e "s/it]"

# 2. Two processes on two GPUs: DDP, then FSDP2 (R3F off: its embedding-noise hook is untested under FSDP).
if [ "$GPUS" -lt 2 ]; then
    echo "== 2. skipped: one GPU only (the DDP and FSDP smoke runs need two)"
    exit 0
fi
smoke() {  # name, accelerate arguments...
    local name=$1
    shift
    local start=$SECONDS
    timeout 300 "$PYTHON" -m accelerate.commands.launch "$@" --num_processes 2 --mixed_precision bf16 \
        training/prefinetune.py --config training/recipes/tiny.yaml --use_cpu false --bf16 true --r3f_lambda 0 \
        --max_steps 6 --output_dir "$OUT/$name" --report_to none >"$OUT/$name.log" 2>&1 || {
        echo "== 2. $name FAILED; the end of $OUT/$name.log:" >&2
        tail -40 "$OUT/$name.log" >&2
        return 1
    }
    local drawn
    drawn=$(grep -c "of 2 drew sub-batches" "$OUT/$name.log" || true)
    echo "== 2. $name: 2 GPUs, 6 updates in $((SECONDS - start)) s (launch and evaluation included); $drawn of 2" \
        "processes reported their tasks:"
    grep -o "process . of 2 drew sub-batches of tasks .*" "$OUT/$name.log" | cut -c1-140
    [ "$drawn" -eq 2 ]
}
smoke ddp --multi_gpu --num_machines 1 --dynamo_backend no
smoke fsdp --config_file training/accelerate_configs/fsdp.yaml
echo "== done; logs and JSON in $OUT"
