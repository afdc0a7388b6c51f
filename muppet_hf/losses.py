"""Loss maths of Muppet pre-finetuning, as pure functions over tensors.

Every function returns one loss per example (shape `[batch]`) so the trainer can scale, mask and average them
across the tasks of one update. References: Muppet (arXiv 2101.11038) §3.3 for the 1/log n scaling, R3F
(arXiv 2008.03156) for the symmetric KL term.
"""

import math

import torch
import torch.nn.functional as F


IGNORE_INDEX = -100


def cross_entropy_per_example(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy of `logits` `[batch, n]` against `labels` `[batch]`, one value per example."""
    return F.cross_entropy(logits.float(), labels.long(), reduction="none", label_smoothing=label_smoothing)


def mse_per_example(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error of `predictions` `[batch]` or `[batch, 1]` against `targets` `[batch]`."""
    return (predictions.float().view(-1) - targets.float().view(-1)) ** 2


def token_cross_entropy_per_example(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Token cross-entropy of `logits` `[batch, length, n]`, averaged over each example's labelled tokens.

    Averaging inside the example (rather than over the whole batch) keeps a long summary from outweighing a short
    one, and lets the trainer treat a seq2seq example like any other example.
    """
    batch, length, n = logits.shape
    token_loss = F.cross_entropy(
        logits.float().reshape(batch * length, n),
        labels.reshape(-1).long(),
        reduction="none",
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
    ).view(batch, length)
    num_tokens = (labels != ignore_index).sum(dim=-1)
    # An example with no labelled token (all truncated away) contributes zero rather than NaN.
    return token_loss.sum(dim=-1) / num_tokens.clamp(min=1)


def span_loss_per_example(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
) -> torch.Tensor:
    """Mean of the start and end cross-entropies of extractive MRC, one value per example.

    Positions must lie inside the sequence: preprocessing points answers that fall outside a window at the first
    (`[CLS]`/`<s>`) token, the SQuAD convention, so no position is ever clamped or ignored here.
    """
    start_positions = start_positions.long()
    end_positions = end_positions.long()
    start = F.cross_entropy(start_logits.float(), start_positions, reduction="none")
    end = F.cross_entropy(end_logits.float(), end_positions, reduction="none")
    return (start + end) / 2


def log_n_scale(per_example_loss: torch.Tensor, num_outputs: torch.Tensor) -> torch.Tensor:
    """Divides each example's loss by log n, n being the number of outputs its head predicts over (paper eq. 1).

    1/log(n): a uniform guess has cross-entropy log n, so after scaling it scores 1.0 on every head, whether it
    picks among 2 classes, 4 choices, 384 positions or 50k tokens (paper §3.3). Heads with n <= 1 (regression)
    have no uniform-guess baseline and are left unscaled.
    """
    n = num_outputs.to(per_example_loss.dtype)
    scale = torch.where(n > 1, 1.0 / torch.log(n.clamp(min=2.0)), torch.ones_like(n))
    return per_example_loss * scale


def symmetric_kl(logits: torch.Tensor, noised_logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric KL divergence KL(p||q) + KL(q||p) between two categorical outputs, per example (R3F eq. 1).

    Args:
        logits (`torch.Tensor` of shape `[batch, ..., n]`): outputs for the clean input.
        noised_logits (`torch.Tensor`, same shape): outputs for the noise-perturbed input.
        mask (`torch.Tensor` of shape `[batch, ...]`, *optional*): which distributions count (e.g. target tokens
            of a summary); the per-example value is their mean.
    """
    log_p = F.log_softmax(logits.float(), dim=-1)
    log_q = F.log_softmax(noised_logits.float(), dim=-1)
    divergence = (log_p.exp() * (log_p - log_q)).sum(-1) + (log_q.exp() * (log_q - log_p)).sum(-1)
    if divergence.dim() == 1:
        return divergence
    divergence = divergence.reshape(divergence.size(0), -1)
    if mask is None:
        return divergence.mean(-1)
    mask = mask.reshape(mask.size(0), -1).to(divergence.dtype)
    return (divergence * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def uniform_guess_loss(n: int) -> float:
    """The cross-entropy of a uniform guess over `n` outputs; `log_n_scale` maps it to 1.0."""
    return math.log(n)


__all__ = [
    "cross_entropy_per_example",
    "log_n_scale",
    "mse_per_example",
    "span_loss_per_example",
    "symmetric_kl",
    "token_cross_entropy_per_example",
    "uniform_guess_loss",
]
