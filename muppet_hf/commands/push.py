"""`muppet-hf push CHECKPOINT_OR_EXPORT REPO_ID`: upload an export to the Hugging Face Hub."""

import argparse
import sys

from huggingface_hub import get_token
from huggingface_hub.errors import HfHubHTTPError

from ..hub import push_export
from ..safety import redact
from .export import add_heads_argument, parse_heads, print_files


def run_push(args: argparse.Namespace) -> int:
    try:
        result = push_export(
            args.path,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            create_pr=args.create_pr,
            dry_run=args.dry_run,
            allow_canary=args.allow_canary,
            heads=parse_heads(args.heads),
            commit_message=args.commit_message,
        )
    except (ConnectionError, HfHubHTTPError) as err:
        # The server's text is shown, but an endpoint may echo the request's Authorization header: hide the token.
        print(f"muppet-hf: error: {redact(str(err), [get_token()])}", file=sys.stderr)
        return 1
    target = f"{result.repo_id}" + (f"@{result.revision}" if result.revision else "")
    visibility = "private" if result.private else "public"
    if result.dry_run:
        print(f"dry run: would upload {len(result.files)} files to {target} ({visibility}, pr={result.create_pr}):")
        print_files(result.files)
        return 0
    print(f"uploaded {len(result.files)} files to {target}: {result.url}")
    return 0


def register_push(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Adds the `push` subcommand to the `muppet-hf` parser's subparsers; returns its parser."""
    parser = subparsers.add_parser(
        "push",
        help="upload an export (or export a checkpoint and upload it) to the Hugging Face Hub",
        description="Create REPO_ID if needed and upload the export with huggingface_hub.HfApi. The token comes "
        "from HF_TOKEN or `hf auth login`; it is never printed or written. Models trained on BIG-bench (canary) "
        "data are refused.",
    )
    parser.add_argument("path", metavar="CHECKPOINT_OR_EXPORT", help="a `muppet-hf export` folder or a checkpoint")
    parser.add_argument("repo_id", metavar="REPO_ID", help="namespace/name on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="branch to upload to (created if missing)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded; no network")
    parser.add_argument("--commit-message", help="the commit message")
    parser.add_argument(
        "--allow-canary",
        action="store_true",
        help="upload a model trained on BIG-bench (canary) data anyway; BIG-bench asks that such models stay "
        "unpublished",
    )
    add_heads_argument(parser, help_suffix=" (used when CHECKPOINT_OR_EXPORT is a checkpoint, not an export)")
    parser.set_defaults(func=run_push)
    return parser
