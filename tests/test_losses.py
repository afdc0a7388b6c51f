import math

import pytest
import torch

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.losses import log_n_scale, symmetric_kl, uniform_guess_loss
from muppet_hf.r3f import (
    capture_embeddings,
    clean_and_noised,
    embedding_noise,
    r3f_divergence,
    sample_noise,
    token_embeddings,
)
from muppet_hf.testing_utils import tiny_config


def test_log_n_scale_divides_by_log_n_and_leaves_regression_alone():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    n = torch.tensor([2.0, 4.0, 1.0, 99.0])
    expected = torch.tensor([1.0 / math.log(2), 2.0 / math.log(4), 3.0, 4.0 / math.log(99)])
    torch.testing.assert_close(log_n_scale(losses, n), expected)


@pytest.mark.parametrize("n", [2, 3, 4, 384, 50265])
def test_uniform_guess_scores_one_on_every_head(n):
    scaled = log_n_scale(torch.tensor([uniform_guess_loss(n)]), torch.tensor([float(n)]))
    torch.testing.assert_close(scaled, torch.tensor([1.0]))


def tiny_model(model_type: str = "bert") -> MuppetForMultiTask:
    torch.manual_seed(0)
    base = tiny_config(model_type)
    heads = {
        "nli": {"type": "classification", "num_labels": 3},
        "sts": {"type": "regression"},
        "multiple_choice": {"type": "multiple_choice"},
        "span": {"type": "span"},
        "pos": {"type": "token_classification", "num_labels": 5},
    }
    if base.is_encoder_decoder:
        heads["seq2seq"] = {"type": "seq2seq"}
    return MuppetForMultiTask(MuppetConfig(base_model_config=base, heads=heads)).eval()


def head_inputs(head: str) -> dict:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 99, (2, 7), generator=generator)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    inputs = {"head": head, "input_ids": ids, "attention_mask": mask}
    if head == "nli":
        inputs["labels"] = torch.tensor([0, 2])
    elif head == "sts":
        inputs["labels"] = torch.tensor([0.5, 3.0])
    elif head == "multiple_choice":
        inputs = {
            "head": head,
            "input_ids": ids[:, None].expand(2, 4, 7).contiguous(),
            "attention_mask": mask[:, None].expand(2, 4, 7).contiguous(),
            "choice_mask": torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool),
            "labels": torch.tensor([1, 3]),
        }
    elif head == "span":
        inputs.update(start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([3, 4]))
    elif head in ("pos", "seq2seq"):
        labels = torch.randint(0, 5, (2, 7), generator=generator)
        labels[1, 5:] = -100
        inputs["labels"] = labels
    return inputs


@pytest.mark.parametrize(
    ("head", "expected_n"),
    [("nli", [3, 3]), ("sts", [1, 1]), ("multiple_choice", [2, 4]), ("span", [7, 5]), ("pos", [5, 5])],
)
def test_log_n_per_head_type_uses_the_heads_n(head, expected_n):
    model = tiny_model()
    out = model(**head_inputs(head))
    assert out.num_outputs.tolist() == expected_n
    expected = torch.stack(
        [loss if n <= 1 else loss / math.log(n) for loss, n in zip(out.per_example_loss, expected_n, strict=True)]
    )
    torch.testing.assert_close(log_n_scale(out.per_example_loss, out.num_outputs), expected)


def test_log_n_of_seq2seq_is_the_vocabulary():
    model = tiny_model("bart")
    out = model(**head_inputs("seq2seq"))
    assert out.num_outputs.tolist() == [99.0, 99.0]


def test_symmetric_kl_is_zero_for_equal_outputs_and_ignores_masked_tokens():
    logits = torch.randn(3, 4)
    assert torch.equal(symmetric_kl(logits, logits), torch.zeros(3))
    assert (symmetric_kl(logits, logits + torch.randn(3, 4)) > 0).all()
    tokens = torch.randn(2, 5, 4)
    noised = tokens.clone()
    noised[:, -1] += 3.0
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    assert torch.equal(symmetric_kl(tokens, noised, mask=mask), torch.zeros(2))


@pytest.mark.parametrize(
    ("model_type", "head"),
    [
        ("bert", "nli"),
        ("bert", "multiple_choice"),
        ("bert", "span"),
        ("bert", "pos"),
        ("bart", "nli"),
        ("bart", "seq2seq"),
    ],
)
def test_r3f_divergence_zero_without_noise_positive_with_it_and_gradients_flow(model_type, head):
    model = tiny_model(model_type)
    inputs = head_inputs(head)
    head_type = model.config.heads[head]["type"]
    embeddings = token_embeddings(model)
    with capture_embeddings(embeddings) as lookup:
        clean = model(**inputs)
    for eps, positive in ((0.0, False), (0.1, True)):
        noise = sample_noise(inputs["input_ids"], embeddings.embedding_dim, eps, "uniform", torch.float)
        with embedding_noise(embeddings, lookup[0], noise):
            noised = model(**inputs)
        divergence = r3f_divergence(head_type, clean, noised, inputs)
        assert divergence.shape == (2,)
        assert bool((divergence > 0).all()) is positive
    model.zero_grad()
    divergence.mean().backward()
    assert embeddings.weight.grad.abs().sum() > 0
    if head != "seq2seq":
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.heads[head].parameters())


def embedding_backwards(loss: torch.Tensor, weight: torch.Tensor) -> int:
    """How many lookups of `weight` the autograd graph of `loss` differentiates (each builds a dense gradient)."""
    seen, stack, count = set(), [loss.grad_fn], 0
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        parents = [parent for parent, _ in node.next_functions if parent is not None]
        if type(node).__name__.startswith("EmbeddingBackward") and any(
            type(parent).__name__ == "AccumulateGrad" and parent.variable is weight for parent in parents
        ):
            count += 1
        stack.extend(parents)
    return count


@pytest.mark.parametrize(("model_type", "head"), [("bert", "nli"), ("bert", "multiple_choice"), ("bart", "seq2seq")])
def test_r3f_noised_pass_reads_the_clean_lookup_detached_as_the_reference_does(model_type, head):
    model = tiny_model(model_type)
    inputs = head_inputs(head)
    head_type = model.config.heads[head]["type"]
    embeddings = token_embeddings(model)
    noise = sample_noise(inputs["input_ids"], embeddings.embedding_dim, 0.1, "normal", torch.float)
    with capture_embeddings(embeddings) as lookup:
        clean = model(**inputs)
    with embedding_noise(embeddings, lookup[0], noise):
        noised = model(**inputs)
    loss = clean.loss + r3f_divergence(head_type, clean, noised, inputs).mean()
    # One backward of the encoder's lookup, the clean pass's (BART's decoders look the same matrix up on their own).
    assert embedding_backwards(loss, embeddings.weight) == (3 if model_type == "bart" else 1)
    model.zero_grad()
    loss.backward()
    reused = embeddings.weight.grad.clone()

    # fairseq's rxf form: the noised pass gets its own lookup, detached, plus the noise (the encoder's only).
    def forward_with(transform):
        calls = []

        def hook(module, args, output):
            calls.append(output)
            return transform(output) if len(calls) == 1 else output

        handle = embeddings.register_forward_hook(hook)
        try:
            return model(**inputs)
        finally:
            handle.remove()

    clean = model(**inputs)
    noised = forward_with(lambda output: output.detach() + noise.view(output.shape))
    model.zero_grad()
    (clean.loss + r3f_divergence(head_type, clean, noised, inputs).mean()).backward()
    torch.testing.assert_close(embeddings.weight.grad, reused)

    # Without the detach the word embeddings would also get the KL through the noised pass: another gradient.
    clean = model(**inputs)
    noised = forward_with(lambda output: output + noise.view(output.shape))
    model.zero_grad()
    (clean.loss + r3f_divergence(head_type, clean, noised, inputs).mean()).backward()
    assert not torch.allclose(embeddings.weight.grad, reused)


@pytest.mark.parametrize("shared_dropout", [False, True])
def test_r3f_passes_draw_their_own_dropout_masks_unless_shared(shared_dropout):
    model = tiny_model().train()
    inputs = head_inputs("nli")
    embeddings = token_embeddings(model)
    torch.manual_seed(7)
    clean, noised = clean_and_noised(model, embeddings, inputs, 0.0, "uniform", shared_dropout=shared_dropout)
    # At eps = 0 only dropout can tell the passes apart.
    assert torch.equal(clean.logits, noised.logits) is shared_dropout
    # Independent masks are those of two plain training-mode forwards, as in fairseq's rxf criterion.
    torch.manual_seed(7)
    sample_noise(inputs["input_ids"], embeddings.embedding_dim, 0.0, "uniform", torch.float)
    first, second = model(**inputs), model(**inputs)
    torch.testing.assert_close(clean.logits, first.logits)
    if not shared_dropout:
        torch.testing.assert_close(noised.logits, second.logits)


def test_r3f_skips_regression():
    model = tiny_model()
    out = model(**head_inputs("sts"))
    assert r3f_divergence("regression", out, out, head_inputs("sts")) is None
