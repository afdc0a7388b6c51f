"""The `muppet_hf.hub` subpackage: its layout, and the upload checks every push path shares."""

from pathlib import Path

import pytest
import torch
from transformers import Trainer

import muppet_hf
from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.testing_utils import tiny_config
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


FAKE_TOKEN = "hf_MuppetHubTestToken0123456789abcdefXYZ"
HUB = Path(muppet_hf.__file__).parent / "hub"


def test_hub_modules_stay_small_and_the_push_function_is_named_apart():
    sizes = {path.name: len(path.read_text().splitlines()) for path in HUB.glob("*.py")}
    assert {"run_metadata.py", "model_card.py", "export.py", "push.py"} <= set(sizes)
    assert max(sizes.values()) <= 600, sizes
    # `push_to_hub` is the method every model and trainer inherits; the package's upload of an export is `push_export`.
    assert "push_to_hub" not in muppet_hf.__all__ and "push_export" in muppet_hf.__all__


def test_trainer_push_to_hub_checks_the_folder_it_uploads(tmp_path, monkeypatch):
    torch.manual_seed(0)
    heads = {"sentiment": {"type": "classification", "num_labels": 2}}
    model = MuppetForMultiTask(
        MuppetConfig(base_model_config=tiny_config("bert"), heads=heads, tasks={"sentiment": "sentiment"})
    )
    output_dir = tmp_path / "out"
    trainer = MuppetTrainer(model, MuppetTrainingArguments(output_dir=str(output_dir), report_to="none", use_cpu=True))
    uploads = []
    monkeypatch.setattr(Trainer, "push_to_hub", lambda self, *args, **kwargs: uploads.append(kwargs) or "url")
    output_dir.mkdir(exist_ok=True)
    # Checkpoint folders are left out of the Trainer's upload, so what they hold is not checked.
    (output_dir / "checkpoint-1").mkdir()
    torch.save({}, output_dir / "checkpoint-1" / "rng_state.pth")
    assert trainer.push_to_hub(token=FAKE_TOKEN) == "url"

    torch.save({}, output_dir / "extra.pt")
    with pytest.raises(ValueError, match=r"pickled files \['extra.pt'\]"):
        trainer.push_to_hub(token=FAKE_TOKEN)
    (output_dir / "extra.pt").unlink()
    (output_dir / "notes.txt").write_text(f"token={FAKE_TOKEN}\n")
    with pytest.raises(ValueError, match="contains the Hugging Face token"):
        trainer.push_to_hub(token=FAKE_TOKEN)
    (output_dir / "notes.txt").unlink()
    # A folder whose config marks it canary is refused as `muppet-hf push` refuses it, even if the model in memory
    # lost the mark.
    (output_dir / "config.json").write_text('{"model_type": "bert", "canary": true}')
    with pytest.raises(ValueError, match="canary"):
        trainer.push_to_hub(token=FAKE_TOKEN)
    assert len(uploads) == 1


def test_trainer_never_pushes_a_pickle_from_inside_training(tmp_path, monkeypatch):
    """`Trainer._push_from_checkpoint` would write a pickled `training_args.bin` and upload it unchecked."""
    heads = {"sentiment": {"type": "classification", "num_labels": 2}}
    model = MuppetForMultiTask(
        MuppetConfig(base_model_config=tiny_config("bert"), heads=heads, tasks={"sentiment": "sentiment"})
    )
    output_dir = tmp_path / "out"
    args = MuppetTrainingArguments(output_dir=str(output_dir), report_to="none", use_cpu=True)
    trainer = MuppetTrainer(model, args)
    monkeypatch.setattr(trainer.args, "push_to_hub", True)
    uploads = []
    monkeypatch.setattr(Trainer, "_push_from_checkpoint", lambda self, folder: uploads.append(folder))
    checkpoint = output_dir / "checkpoint-1"
    checkpoint.mkdir(parents=True)
    trainer._push_from_checkpoint(str(checkpoint))
    assert uploads == []
    assert not (output_dir / "training_args.bin").exists()
