"""`muppet-hf export CHECKPOINT OUTPUT_DIR`: write a Hub-ready folder (weights, tokenizer, model card)."""

import argparse
from collections.abc import Sequence

from ..hub.export import export_checkpoint
from ..hub.push import list_upload_files
from ..lora import export_adapters, export_merged


def parse_heads(values: Sequence[str]) -> str | list[str]:
    """`["all"]` -> `"all"`, `["none"]` -> `"none"`, head names -> a list; `all`/`none` cannot mix with names."""
    values = list(values)
    for keyword in ("all", "none"):
        if keyword in values:
            if len(values) > 1:
                raise ValueError(f"--heads {keyword} cannot be combined with other values, got {values}")
            return keyword
    return values


def add_heads_argument(parser: argparse.ArgumentParser, help_suffix: str = ""):
    parser.add_argument(
        "--heads",
        nargs="+",
        default=["all"],
        metavar="all|none|NAME",
        help="`all` (default): the multi-task model with every head, for `import muppet_hf; AutoModel`; `none`: the "
        "backbone alone in its own model type, for plain transformers; or the head names to keep" + help_suffix,
    )


def print_files(files: list[tuple[str, int]]):
    for path, size in files:
        print(f"  {path}  ({size:,} bytes)")
    print(f"{len(files)} files, {sum(size for _, size in files):,} bytes")


def run_export(args: argparse.Namespace) -> int:
    if args.merge and args.adapter:
        raise ValueError("--merge and --adapter write different folders; pass one of them")
    if args.base_model is not None and not args.adapter:
        raise ValueError("--base-model names the backbone of an --adapter export; pass --adapter too")
    if args.adapter:
        output_dir = export_adapters(
            args.checkpoint,
            args.output_dir,
            heads=parse_heads(args.heads),
            base_model=args.base_model,
            repo_id=args.repo_id,
            overwrite=args.overwrite,
        )
        print(f"wrote {output_dir}:")
        print_files(list_upload_files(output_dir))
        return 0
    export = export_merged if args.merge else export_checkpoint
    output_dir = export(
        args.checkpoint,
        args.output_dir,
        heads=parse_heads(args.heads),
        card_template=args.card_template,
        repo_id=args.repo_id,
        bake_spectral_norm=not args.keep_spectral_norm,
        remote_code=args.remote_code,
        overwrite=args.overwrite,
    )
    print(f"wrote {output_dir}:")
    print_files(list_upload_files(output_dir))
    return 0


def register_export(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Adds the `export` subcommand to the `muppet-hf` parser's subparsers; returns its parser."""
    parser = subparsers.add_parser(
        "export",
        help="write a Hub-ready folder from a checkpoint",
        description="Write safetensors weights, the tokenizer, a README model card and muppet_run.json to "
        "OUTPUT_DIR (atomically: a temporary folder renamed into place). Never loads or writes pickles.",
    )
    parser.add_argument("checkpoint", help="a Muppet checkpoint folder (config.json + *.safetensors)")
    parser.add_argument("output_dir", help="the folder to write")
    add_heads_argument(parser)
    parser.add_argument(
        "--card-template",
        help="a template name in model_cards/ (muppet-roberta-base, muppet-roberta-large, muppet-bart-large, "
        "muppet-minilm-offline, default) or a .md path; default: chosen from the base model",
    )
    parser.add_argument("--repo-id", help="the Hub id the card's examples load (default: the output folder's name)")
    parser.add_argument(
        "--keep-spectral-norm",
        action="store_true",
        help="keep spectral-norm parametrised heads as they are, to continue R4F training; by default their "
        "normalised weight is baked into plain Linear layers (same outputs)",
    )
    parser.add_argument(
        "--remote-code",
        action="store_true",
        help="also ship the model code and auto_map, for AutoModel(..., trust_remote_code=True) without muppet_hf. "
        "Off by default: trust_remote_code runs the repository's Python on its users' machines",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT_DIR if it exists")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="LoRA checkpoints: merge the adapters of the exported heads into the backbone weights (peft's "
        "merge_and_unload), so plain transformers loads the backbone",
    )
    parser.add_argument(
        "--adapter",
        action="store_true",
        help="LoRA checkpoints: write peft adapter folders (shared adapter at the top, per-task ones in <head>/) "
        "plus the heads, for peft.PeftModel.from_pretrained(AutoModel.from_pretrained(BASE), OUTPUT_DIR)",
    )
    parser.add_argument("--base-model", help="with --adapter: the backbone the adapters apply to (default: the run's)")
    parser.set_defaults(func=run_export)
    return parser
