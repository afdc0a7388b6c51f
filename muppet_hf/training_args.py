"""Training arguments of Muppet pre-finetuning (Aghajanyan et al., arXiv 2101.11038)."""

from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments


BATCHING_MODES = ("heterogeneous", "batch_homogeneous", "dataset_homogeneous")
TASK_SAMPLING_MODES = ("natural", "temperature", "uniform")
LOSS_SCALING_MODES = ("log_n", "none")
NOISE_TYPES = ("uniform", "normal")


@dataclass
class MuppetTrainingArguments(TrainingArguments):
    r"""
    Configuration of [`MuppetTrainer`]: the arguments of [`~transformers.TrainingArguments`] plus the multi-task
    ones below. `per_device_train_batch_size` is the size of one *sub-batch*: every sub-batch holds examples of a
    single task, so it runs one head with one collator.

    Parameters:
        > Mixing tasks

        batching (`str`, *optional*, defaults to `"heterogeneous"`):
            How the sub-batches of one optimizer update are chosen (paper §5.2): `"heterogeneous"` draws each from
            the task mixture, so an update spans several tasks; `"batch_homogeneous"` takes all of an update's
            sub-batches from one randomly chosen task; `"dataset_homogeneous"` trains on the tasks one after another.
        task_sampling (`str`, *optional*, defaults to `"natural"`):
            How often each task is drawn: `"natural"` in proportion to its size (every example once per epoch, no up-
            or down-sampling, as in the paper), `"temperature"` in proportion to size^(1/`sampling_temperature`),
            `"uniform"` equally often.
        sampling_temperature (`float`, *optional*, defaults to `2.0`):
            Temperature of `task_sampling="temperature"`; 1 is natural, larger values flatten towards uniform.
        max_examples_per_task (`int`, *optional*):
            Cap on the examples drawn from any one task per epoch (a fresh random subset each epoch).
        tasks_per_update (`int`, *optional*):
            Single-task sub-batches each process accumulates per optimizer update; it *is* the gradient
            accumulation count, so setting it sets `gradient_accumulation_steps`. One update then holds
            `tasks_per_update × num_processes` sub-batches. Defaults to `gradient_accumulation_steps`.
        group_by_length (`bool`, *optional*, defaults to `True`):
            Whether to build each sub-batch from examples of similar length, so little padding is computed.

        > Loss

        loss_scaling (`str`, *optional*, defaults to `"log_n"`):
            `"log_n"` divides each example's loss by log n of its head (paper eq. 1); `"none"` leaves it as is.
        max_nonfinite_updates (`int`, *optional*, defaults to `3`):
            Updates in a row that may be skipped for a NaN/inf loss before training saves a checkpoint and stops.

        > R3F / R4F (arXiv 2008.03156)

        r3f_lambda (`float`, *optional*, defaults to `0.0`):
            Weight of the symmetric-KL term between clean and noised outputs; 0 turns R3F off.
        r3f_eps (`float`, *optional*, defaults to `1e-5`):
            Scale of the noise added to the input token embeddings.
        r3f_noise (`str`, *optional*, defaults to `"uniform"`):
            `"uniform"` on [-eps, eps] or `"normal"` with standard deviation eps.
        r4f (`bool`, *optional*, defaults to `False`):
            R4F = R3F plus spectral normalisation of the heads; the model must be built with
            `MuppetConfig(spectral_norm=True)` (the `prefinetune.py` script does this).

    Three parent defaults change: `remove_unused_columns=False` (the collator reads each example's `task`),
    `ddp_find_unused_parameters=True` (a sub-batch runs one head, so the other heads get no gradient in it) and
    `logging_nan_inf_filter=False` (the filter reads every sub-batch's loss on the host; the trainer instead
    counts a non-finite sub-batch as 0 in the logged `loss`, on the device, and skips its update).
    """

    batching: Literal["heterogeneous", "batch_homogeneous", "dataset_homogeneous"] = field(
        default="heterogeneous",
        metadata={
            "help": "How the sub-batches of an update are chosen (paper §5.2): `heterogeneous` (several tasks per "
            "update), `batch_homogeneous` (one random task per update) or `dataset_homogeneous` (tasks in turn)."
        },
    )
    task_sampling: Literal["natural", "temperature", "uniform"] = field(
        default="natural",
        metadata={
            "help": "How often each task is drawn: `natural` (in proportion to its size), `temperature` "
            "(size^(1/T)) or `uniform`."
        },
    )
    sampling_temperature: float = field(
        default=2.0, metadata={"help": "Temperature T of `task_sampling=temperature`; 1 is natural sampling."}
    )
    max_examples_per_task: int | None = field(
        default=None, metadata={"help": "Cap on the examples drawn from each task per epoch."}
    )
    tasks_per_update: int | None = field(
        default=None,
        metadata={
            "help": "Single-task sub-batches each process accumulates per optimizer update (sets "
            "`gradient_accumulation_steps`). Defaults to `gradient_accumulation_steps`."
        },
    )
    group_by_length: bool = field(
        default=True, metadata={"help": "Build each sub-batch from examples of similar length (less padding)."}
    )
    loss_scaling: Literal["log_n", "none"] = field(
        default="log_n",
        metadata={"help": "`log_n`: divide each example's loss by log n of its head (paper eq. 1); `none`."},
    )
    max_nonfinite_updates: int = field(
        default=3,
        metadata={"help": "Updates in a row skipped for a NaN/inf loss before training checkpoints and stops."},
    )
    r3f_lambda: float = field(
        default=0.0, metadata={"help": "Weight of the R3F symmetric-KL term (arXiv 2008.03156); 0 turns it off."}
    )
    r3f_eps: float = field(default=1e-5, metadata={"help": "Scale of the R3F embedding noise."})
    r3f_noise: Literal["uniform", "normal"] = field(
        default="uniform", metadata={"help": "R3F noise: `uniform` on [-eps, eps] or `normal` with std eps."}
    )
    r4f: bool = field(
        default=False,
        metadata={"help": "R4F: R3F plus spectral normalisation of the heads (sets `MuppetConfig.spectral_norm`)."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Must stay False: the multi-task collator reads each example's `task` field."},
    )
    ddp_find_unused_parameters: bool | None = field(
        default=True,
        metadata={"help": "A sub-batch runs one head, so DDP must allow parameters without gradients."},
    )
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={
            "help": "Off: the Trainer's filter reads every sub-batch's loss on the host; MuppetTrainer counts a "
            "non-finite sub-batch as 0 in the logged `loss`, on the device, and skips its update."
        },
    )

    def __post_init__(self):
        for name, value, allowed in (
            ("batching", self.batching, BATCHING_MODES),
            ("task_sampling", self.task_sampling, TASK_SAMPLING_MODES),
            ("loss_scaling", self.loss_scaling, LOSS_SCALING_MODES),
            ("r3f_noise", self.r3f_noise, NOISE_TYPES),
        ):
            if value not in allowed:
                raise ValueError(f"MuppetTrainingArguments: field `{name}` is {value!r}; use one of {allowed}")
        if self.sampling_temperature <= 0:
            raise ValueError("MuppetTrainingArguments: field `sampling_temperature` must be positive")
        if self.max_examples_per_task is not None and self.max_examples_per_task < 1:
            raise ValueError("MuppetTrainingArguments: field `max_examples_per_task` must be at least 1")
        if self.max_nonfinite_updates < 1:
            raise ValueError("MuppetTrainingArguments: field `max_nonfinite_updates` must be at least 1")
        if self.r3f_lambda < 0 or self.r3f_eps < 0:
            raise ValueError("MuppetTrainingArguments: fields `r3f_lambda` and `r3f_eps` must be non-negative")
        if self.r4f and self.r3f_lambda == 0:
            raise ValueError("MuppetTrainingArguments: field `r4f` is R3F plus spectral norm; set `r3f_lambda` > 0")
        if self.remove_unused_columns:
            raise ValueError(
                "MuppetTrainingArguments: field `remove_unused_columns` must be False: the multi-task collator "
                "reads each example's `task` field, which the model's forward does not take"
            )
        if self.tasks_per_update is not None:
            if self.tasks_per_update < 1:
                raise ValueError("MuppetTrainingArguments: field `tasks_per_update` must be at least 1")
            # One sub-batch is one accumulation micro-step (one forward through one head), so the two settings
            # are the same knob; refuse a contradiction rather than silently pick one.
            if self.gradient_accumulation_steps not in (1, self.tasks_per_update):
                raise ValueError(
                    f"MuppetTrainingArguments: fields `tasks_per_update` ({self.tasks_per_update}) and "
                    f"`gradient_accumulation_steps` ({self.gradient_accumulation_steps}) disagree; each sub-batch "
                    "is one accumulation step, so set only one of them"
                )
            self.gradient_accumulation_steps = self.tasks_per_update
        super().__post_init__()
        self.tasks_per_update = self.gradient_accumulation_steps


__all__ = ["MuppetTrainingArguments"]
