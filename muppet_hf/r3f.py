"""R3F / R4F regularisation (Aghajanyan et al., "Better Fine-Tuning by Reducing Representational Collapse",
arXiv 2008.03156), as used on top of Muppet pre-finetuning.

R3F adds `lambda * KL_S(f(x) || f(x + z))` to the task loss, `z` being uniform or normal noise on the input token
embeddings and `KL_S` the symmetric KL divergence of the output distributions. R4F adds spectral normalisation of
the heads (`MuppetConfig.spectral_norm`).

As in the reference implementation (fairseq `examples/rxf`), the two passes are plain training-mode forwards: each
draws its own dropout masks, so the divergence measures dropout's effect on the output as well as the noise's (at
the default eps = 1e-5 the noise alone moves the outputs by ~1e-5, a KL of ~1e-10); and the noised pass reads the
clean lookup *detached*, plus the noise, so the word-embedding table gets the KL's gradient through the clean pass
only. `shared_dropout=True` replays the clean pass's masks instead, isolating the noise.

The noise enters through a forward hook on the encoder's token-embedding module, so the model still receives
`input_ids` (position ids, token types and padding masks stay exactly as in the clean pass) and, for
encoder-decoder backbones, only the encoder's input is perturbed.
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
    """Replaces the output of `embeddings` by `clean.detach() + noise` on its next call only, inside the `with` block.

    `clean` is the clean pass's lookup (see [`capture_embeddings`]), detached as in the reference implementation: the
    noised pass sends no gradient back to it, so the embedding matrix gets one backward (the clean pass's), one
    gradient of `vocab × hidden`, and the KL reaches it through the clean pass only. The lookup of the noised pass
    still runs (a gather), outside the graph. One call only, so a shared decoder embedding stays clean. A
    multiple-choice forward flattens `[batch, choices, length]` to `[batch * choices, length]`; the noise is reshaped
    to the embeddings' shape.
    """
    calls = 0

    def add_noise(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls > 1:
            return output
        # `0 * clean` keeps the lookup in this pass's graph with a zero gradient: DDP with `find_unused_parameters`
        # would otherwise mark the embeddings unused after this forward, then fail when the clean pass's backward
        # reaches them.
        return clean.detach() + noise.view(clean.shape).to(clean.dtype) + 0.0 * clean

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
    model: nn.Module,
    embeddings: nn.Embedding,
    inputs: dict,
    eps: float,
    noise_type: str,
    shared_dropout: bool = False,
) -> tuple[MuppetMultiTaskOutput, MuppetMultiTaskOutput]:
    """The clean and the noised forward passes of one sub-batch.

    Args:
        model (`nn.Module`): the model as trained (possibly wrapped by DDP or FSDP).
        embeddings (`nn.Embedding`): its encoder's token embeddings ([`token_embeddings`] of the unwrapped model).
        inputs (`dict`): the keyword arguments of the forward pass.
        eps (`float`), noise_type (`str`): see [`sample_noise`].
        shared_dropout (`bool`, *optional*, defaults to `False`): replay the clean pass's dropout masks in the noised
            pass, so the KL measures the embedding noise alone (exactly 0 at eps = 0). Off, as in the reference
            implementation, each pass draws its own masks.
    """
    # Sampled before the fork, so that with `shared_dropout` both passes draw the same dropout masks.
    noise = sample_noise(inputs["input_ids"], embeddings.embedding_dim, eps, noise_type, embeddings.weight.dtype)
    replay = fork_rng(inputs["input_ids"].device) if shared_dropout else contextlib.nullcontext()
    with replay, capture_embeddings(embeddings) as clean:
        outputs = model(**inputs)
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
