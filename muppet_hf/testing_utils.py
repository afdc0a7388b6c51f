"""Tiny random backbones and an offline tokenizer, for tests and the `tiny` recipe (no Hub access needed)."""

import string

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoConfig, PreTrainedConfig, PreTrainedTokenizerFast


TINY_VOCAB_SIZE = 99
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_vocab() -> list[str]:
    """A character-level WordPiece vocabulary that fits in 99 ids: specials, characters and their `##` forms."""
    characters = list(string.ascii_lowercase + string.digits) + list(".,'?!-:;\"()")
    vocab = SPECIAL_TOKENS + characters + [f"##{c}" for c in string.ascii_lowercase + string.digits]
    return vocab[:TINY_VOCAB_SIZE]


def tiny_tokenizer(model_max_length: int = 128) -> PreTrainedTokenizerFast:
    """An uncased BERT-style fast tokenizer over `tiny_vocab()`, built in memory."""
    vocab = {token: index for index, token in enumerate(tiny_vocab())}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def tiny_config(model_type: str = "bert", **overrides) -> PreTrainedConfig:
    """A tiny random backbone config (vocab 99, hidden 32, 2 layers, 4 heads, FFN 37) of `model_type`.

    Token ids match `tiny_tokenizer()`: pad 0, bos/cls 2, eos/sep 3.
    """
    special = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}
    if model_type in ("bart", "t5"):
        sizes = {
            "bart": {
                "d_model": 32,
                "encoder_layers": 2,
                "decoder_layers": 2,
                "encoder_attention_heads": 4,
                "decoder_attention_heads": 4,
                "encoder_ffn_dim": 37,
                "decoder_ffn_dim": 37,
                "max_position_embeddings": 512,
                "decoder_start_token_id": 2,
            },
            "t5": {"d_model": 32, "d_kv": 8, "d_ff": 37, "num_layers": 2, "num_heads": 4, "decoder_start_token_id": 0},
        }[model_type]
    else:
        sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37}
        if model_type == "roberta":
            # RoBERTa offsets positions by padding_idx + 1, so it needs room beyond the sequence length.
            sizes["max_position_embeddings"] = 512 + 2
    return AutoConfig.for_model(model_type, vocab_size=TINY_VOCAB_SIZE, **special, **sizes, **overrides)


def realign_(model):
    """Copies every parameter and buffer into freshly allocated storage, in place.

    transformers 5 loads safetensors weights as views into one buffer, often not 64-byte aligned. CPU matmul and
    reduction kernels pick different vector paths for unaligned storage and round differently in the last bit, so
    bit-identity tests compare models only after both hold their (bitwise equal) weights in aligned storage.
    """
    for tensor in [*model.parameters(), *model.buffers()]:
        tensor.data = tensor.data.clone()
    return model
