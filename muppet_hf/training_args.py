"""Training arguments of Muppet pre-finetuning (Aghajanyan et al., arXiv 2101.11038)."""

from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments

from .safety import check_training_arguments
from .sampling import TASK_SIZE_UNITS


BATCHING_MODES = ("heterogeneous", "batch_homogeneous", "dataset_homogeneous")
TASK_SAMPLING_MODES = ("natural", "temperature", "uniform")
LOSS_SCALING_MODES = ("log_n", "none")
NOISE_TYPES = ("uniform", "normal")
R3F_DROPOUT_MODES = ("independent", "shared")
LORA_MODES = ("shared", "per_task", "shared+per_task")


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
        task_size (`str`, *optional*, defaults to `"examples"`):
            How a task's size is counted for `task_sampling` and `max_examples_per_task`: `"examples"` counts source
            examples, so the windows of a long MRC context count once (as the paper sizes datasets) and each epoch
            draws one window of each; `"windows"` counts tokenized rows, so every window is drawn each epoch.
        max_tokens_per_sub_batch (`int`, *optional*):
            Padded-token budget of one sub-batch: each task's sub-batch holds at most
            `per_device_train_batch_size` examples, fewer when its widest example (`choices × longest sequence`
            for multiple choice) times that many would exceed the budget. With 128-token sequences, 2048 leaves
            classification and MRC sub-batches of 16 whole and cuts 5-choice multiple choice to 3 questions.
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

        > Protecting the backbone from fresh heads

        head_warmup_steps (`int`, *optional*, defaults to `0`):
            Updates at the start during which the backbone is frozen and only the heads train (linear probing
            before fine-tuning), so that randomly initialised heads do not send large gradients into it. With LoRA
            the adapters are frozen for those updates; the backbone's own weights stay frozen throughout.
        backbone_learning_rate (`float`, *optional*):
            Peak learning rate of the backbone's parameters; the heads keep `learning_rate`. Defaults to
            `learning_rate` for both.

        > R3F / R4F (arXiv 2008.03156)

        r3f_lambda (`float`, *optional*, defaults to `0.0`):
            Weight of the symmetric-KL term between clean and noised outputs; 0 turns R3F off.
        r3f_eps (`float`, *optional*, defaults to `1e-5`):
            Scale of the noise added to the input token embeddings.
        r3f_noise (`str`, *optional*, defaults to `"uniform"`):
            `"uniform"` on [-eps, eps] or `"normal"` with standard deviation eps.
        r3f_dropout (`str`, *optional*, defaults to `"independent"`):
            `"independent"`: the clean and noised passes draw their own dropout masks, as the reference
            implementation (fairseq `examples/rxf`) does, so the KL also penalises dropout's effect on the outputs;
            at eps 1e-5 that is most of it. `"shared"`: the noised pass replays the clean pass's masks, so the KL
            measures the embedding noise alone (~1e-10 per example at eps 1e-5).
        r4f (`bool`, *optional*, defaults to `False`):
            R4F = R3F plus spectral normalisation of the heads; the model must be built with
            `MuppetConfig(spectral_norm=True)` (the `prefinetune.py` script does this).

        > Output folder

        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            Replace an `output_dir` that holds a run's checkpoints or outputs (the training scripts refuse one
            otherwise, unless resuming); the old folder is moved aside in one rename and deleted.

        > LoRA (arXiv 2106.09685, through `peft`; see `muppet_hf.lora`)

        lora_mode (`str`, *optional*):
            `None` (default) trains every weight. `"shared"` trains one LoRA adapter on the frozen backbone for all
            tasks; `"per_task"` one adapter per head (the multiple-choice tasks share the `multiple_choice` head's
            adapter, the MRC tasks the `span` head's), each sub-batch running its own; `"shared+per_task"` both at
            once. Heads always train fully.
        lora_r (`int`, *optional*, defaults to `8`):
            Rank of every adapter.
        lora_alpha (`float`, *optional*, defaults to `16.0`):
            LoRA scaling numerator: the update is `(alpha / r) B A`.
        lora_dropout (`float`, *optional*, defaults to `0.05`):
            Dropout on the adapters' input.
        lora_target_modules (`list[str]`, *optional*):
            Names of the backbone's linear layers to adapt (e.g. `query value`). Defaults by backbone family: attention
            query and value (`query`/`value` for bert, roberta, electra; `q`/`v` for mpnet and t5; `query_proj`/
            `value_proj` for deberta-v2; `q_proj`/`v_proj` for bart).

    Three parent defaults change: `remove_unused_columns=False` (the dataset hands the collator whole sub-batches),
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
    task_size: Literal["examples", "windows"] = field(
        default="examples",
        metadata={
            "help": "How a task's size is counted for sampling: `examples` (source examples; an MRC example's "
            "windows count once) or `windows` (tokenized rows)."
        },
    )
    max_tokens_per_sub_batch: int | None = field(
        default=None,
        metadata={
            "help": "Padded-token budget of one sub-batch: tasks with wide examples (multiple choice: choices x "
            "length) get fewer examples per sub-batch. Default: every sub-batch holds per_device_train_batch_size."
        },
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
    head_warmup_steps: int = field(
        default=0,
        metadata={"help": "Updates at the start with the backbone frozen, training only the heads; 0 turns it off."},
    )
    backbone_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Peak learning rate of the backbone; the heads keep `learning_rate`. Default: the same."},
    )
    r3f_lambda: float = field(
        default=0.0, metadata={"help": "Weight of the R3F symmetric-KL term (arXiv 2008.03156); 0 turns it off."}
    )
    r3f_eps: float = field(default=1e-5, metadata={"help": "Scale of the R3F embedding noise."})
    r3f_noise: Literal["uniform", "normal"] = field(
        default="uniform", metadata={"help": "R3F noise: `uniform` on [-eps, eps] or `normal` with std eps."}
    )
    r3f_dropout: Literal["independent", "shared"] = field(
        default="independent",
        metadata={
            "help": "R3F dropout masks: `independent` per pass, as fairseq's rxf (the KL then includes dropout's "
            "effect), or `shared`, replayed in the noised pass (the KL measures the noise alone)."
        },
    )
    r4f: bool = field(
        default=False,
        metadata={"help": "R4F: R3F plus spectral normalisation of the heads (sets `MuppetConfig.spectral_norm`)."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace an `output_dir` that holds a run (cleared in one rename); without it, a new run refuses "
            "such a folder, so two runs never mix their checkpoints."
        },
    )
    lora_mode: Literal["shared", "per_task", "shared+per_task"] | None = field(
        default=None,
        metadata={
            "help": "Train LoRA adapters on a frozen backbone: `shared` (one for all tasks), `per_task` (one per "
            "head) or `shared+per_task`. Default: full training."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "Rank of the LoRA adapters."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling: the update is (alpha / r) B A."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA adapters' input."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Backbone linear layers to adapt; default by family (attention query and value)."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Must stay False: the multi-task collator receives whole sub-batches, not column dicts."},
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
            ("r3f_dropout", self.r3f_dropout, R3F_DROPOUT_MODES),
            ("task_size", self.task_size, TASK_SIZE_UNITS),
        ):
            if value not in allowed:
                raise ValueError(f"MuppetTrainingArguments: field `{name}` is {value!r}; use one of {allowed}")
        if self.sampling_temperature <= 0:
            raise ValueError("MuppetTrainingArguments: field `sampling_temperature` must be positive")
        if self.max_examples_per_task is not None and self.max_examples_per_task < 1:
            raise ValueError("MuppetTrainingArguments: field `max_examples_per_task` must be at least 1")
        if self.max_tokens_per_sub_batch is not None and self.max_tokens_per_sub_batch < 1:
            raise ValueError("MuppetTrainingArguments: field `max_tokens_per_sub_batch` must be at least 1")
        if self.head_warmup_steps < 0:
            raise ValueError("MuppetTrainingArguments: field `head_warmup_steps` must be non-negative")
        if self.backbone_learning_rate is not None and self.backbone_learning_rate < 0:
            raise ValueError("MuppetTrainingArguments: field `backbone_learning_rate` must be non-negative")
        if self.max_nonfinite_updates < 1:
            raise ValueError("MuppetTrainingArguments: field `max_nonfinite_updates` must be at least 1")
        if self.r3f_lambda < 0 or self.r3f_eps < 0:
            raise ValueError("MuppetTrainingArguments: fields `r3f_lambda` and `r3f_eps` must be non-negative")
        if self.r4f and self.r3f_lambda == 0:
            raise ValueError("MuppetTrainingArguments: field `r4f` is R3F plus spectral norm; set `r3f_lambda` > 0")
        if self.lora_mode is not None and self.lora_mode not in LORA_MODES:
            raise ValueError(
                f"MuppetTrainingArguments: field `lora_mode` is {self.lora_mode!r}; use one of {LORA_MODES} or None"
            )
        if self.lora_r <= 0:
            raise ValueError(f"MuppetTrainingArguments: field `lora_r` must be a positive rank, got {self.lora_r}")
        if self.lora_alpha <= 0:
            raise ValueError(f"MuppetTrainingArguments: field `lora_alpha` must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(
                f"MuppetTrainingArguments: field `lora_dropout` must be in [0, 1), got {self.lora_dropout}"
            )
        if self.lora_target_modules is not None and not self.lora_target_modules:
            raise ValueError("MuppetTrainingArguments: field `lora_target_modules` is empty; omit it for the default")
        if self.remove_unused_columns:
            raise ValueError(
                "MuppetTrainingArguments: field `remove_unused_columns` must be False: the multi-task dataset hands "
                "the collator whole sub-batches (`muppet_hf.sampling.SubBatch`), whose columns the Trainer cannot "
                "filter"
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
        check_training_arguments(self)
        super().__post_init__()
        self.tasks_per_update = self.gradient_accumulation_steps


__all__ = ["MuppetTrainingArguments"]
