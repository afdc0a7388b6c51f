"""R3F / R4F regularisation (Aghajanyan et al., "Better Fine-Tuning by Reducing Representational Collapse",
arXiv 2008.03156), as used on top of Muppet pre-finetuning.

R3F adds `lambda * KL_S(f(x) || f(x + z))` to the task loss, `z` being uniform or normal noise on the input token
embeddings and `KL_S` the symmetric KL divergence of the output distributions. R4F adds spectral normalisation of
the heads (`MuppetConfig.spectral_norm`).

The noise enters through a forward hook on the encoder's token-embedding module, so the model still receives
`input_ids` (position ids, token types and padding masks stay exactly as in the clean pass) and, for
encoder-decoder backbones, only the encoder's input is perturbed. The noised pass adds the noise to the clean
pass's lookup, so the `vocab × hidden` embedding gradient is built once per sub-batch, not once per pass.
"""

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from .heads import MuppetMultiTaskOutput, head_class
from .losses import symmetric_kl
from .modeling_muppet import MuppetForMultiTask


def token_embeddings(model: MuppetForMultiTask) -> nn.Embedding:
    """The token-embedding module of the model's encoder: the only input R3F perturbs."""
    embeddings = model.get_encoder().get_input_embeddings()
    if not isinstance(embeddings, nn.Embedding):
        raise TypeError(f"R3F needs an nn.Embedding token embedding; this backbone has {type(embeddings).__name__}")
    return embeddings


def sample_noise(
    input_ids: torch.Tensor, embedding_dim: int, eps: float, noise_type: str, dtype: torch.dtype
) -> torch.Tensor:
    """Noise of shape `[*input_ids.shape, embedding_dim]`: uniform on [-eps, eps] or normal with std eps."""
    noise = torch.empty((*input_ids.shape, embedding_dim), device=input_ids.device, dtype=dtype)
    if noise_type == "uniform":
        return noise.uniform_(-eps, eps)
    if noise_type == "normal":
        return noise.normal_(0.0, eps)
    raise ValueError(f"unknown R3F noise type {noise_type!r}; use uniform or normal")


@contextlib.contextmanager
def capture_embeddings(embeddings: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Yields a list that receives the output of `embeddings` on its first call inside the `with` block.

    The first call is the encoder's: BART and T5 share the token-embedding module between encoder and decoder, and
    the encoder runs first.
    """
    captured: list[torch.Tensor] = []

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not captured:
            captured.append(output)

    handle = embeddings.register_forward_hook(record)
    try:
        yield captured
    finally:
        handle.remove()


@contextlib.contextmanager
def embedding_noise(embeddings: nn.Module, clean: torch.Tensor, noise: torch.Tensor) -> Iterator[None]:
    """Replaces the output of `embeddings` by `clean + noise` on its next call only, inside the `with` block.

    `clean` is the clean pass's lookup (see [`capture_embeddings`]): the noised pass reuses it instead of its own,
    so the gradients of both passes meet at `clean` and the embedding matrix gets one backward, one gradient of
    `vocab × hidden` rather than two. The lookup of the noised pass still runs (a gather), outside the graph.
    One call only, so a shared decoder embedding stays clean. A multiple-choice forward flattens
    `[batch, choices, length]` to `[batch * choices, length]`; the noise is reshaped to the embeddings' shape.
    """
    calls = 0

    def add_noise(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls > 1:
            return output
        return clean + noise.view(clean.shape).to(clean.dtype)

    handle = embeddings.register_forward_hook(add_noise)
    try:
        yield
    finally:
        handle.remove()


def fork_rng(device: torch.device):
    """Forks the RNG of `device` (and the CPU's), so the noised pass can replay the clean pass's dropout masks."""
    devices = [] if device.type == "cpu" else [device]
    return torch.random.fork_rng(devices=devices, device_type=device.type)


def clean_and_noised(
    model: nn.Module, embeddings: nn.Embedding, inputs: dict, eps: float, noise_type: str
) -> tuple[MuppetMultiTaskOutput, MuppetMultiTaskOutput]:
    """The clean and the noised forward passes of one sub-batch, with the same dropout masks.

    Args:
        model (`nn.Module`): the model as trained (possibly wrapped by DDP or FSDP).
        embeddings (`nn.Embedding`): its encoder's token embeddings ([`token_embeddings`] of the unwrapped model).
        inputs (`dict`): the keyword arguments of the forward pass.
        eps (`float`), noise_type (`str`): see [`sample_noise`].
    """
    # Sampled before the forks, so both passes below draw the same dropout masks: the KL then measures the effect
    # of the embedding noise alone, and is exactly 0 at eps = 0.
    noise = sample_noise(inputs["input_ids"], embeddings.embedding_dim, eps, noise_type, embeddings.weight.dtype)
    with fork_rng(inputs["input_ids"].device), capture_embeddings(embeddings) as clean:
        outputs = model(**inputs)
    # The noised pass reuses the clean pass's lookup, so the word-embedding gradient is built once.
    with embedding_noise(embeddings, clean[0], noise):
        noised = model(**inputs)
    return outputs, noised


def r3f_divergence(
    head_type: str, clean: MuppetMultiTaskOutput, noised: MuppetMultiTaskOutput, inputs: dict
) -> torch.Tensor | None:
    """Symmetric KL between the clean and noised output distributions, one value per example.

    The head compares what it predicts (`MuppetHead.compared_logits`): classification and multiple choice their
    class / choice distributions (padding choices hold the dtype's minimum on both sides and contribute 0); span
    heads the start and end distributions, averaged; tagging and seq2seq the labelled tokens, averaged. Regression
    has no distribution: returns `None` (R3F skips it).
    """
    head = head_class(head_type)
    if not head.compares_distributions:
        return None
    divergences = [
        symmetric_kl(clean_logits, noised_logits, mask=mask)
        for (clean_logits, mask), (noised_logits, _) in zip(
            head.compared_logits(clean, inputs), head.compared_logits(noised, inputs), strict=True
        )
    ]
    return sum(divergences) / len(divergences)


__all__ = [
    "capture_embeddings",
    "clean_and_noised",
    "embedding_noise",
    "fork_rng",
    "r3f_divergence",
    "sample_noise",
    "token_embeddings",
]
