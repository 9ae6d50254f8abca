"""Convert an E5S1 file into a sentence-transformers folder (BertModel + tokenizer.json).

The encoder is written as a ``BertModel`` in float32 safetensors: the Q4_0 weights
dequantised exactly (``(q - 8) * d`` is exact in float32), 512 absolute positions starting
at 0 as the C feeds them, token type 0, erf GELU, the file's eps. The tokenizer reproduces
``tok_content`` (see ``e5tokenize``): a Unigram model with the file's pieces and scores; a
normalizer that applies the file's per-codepoint table, then collapses runs of spaces and
turns them into ``▁`` with a leading one; a split that isolates codepoints no piece covers
(so two unknowns in a row stay two ``<unk>``, as in the C; tokenizers' Unigram would fuse
them); ``<s> … </s>`` around the text.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import PackError
from assistant.models.embedders.e5file import E5File
from assistant.models.embedders.e5tokenize import META

if TYPE_CHECKING:
    from assistant.models.catalog import PackSpec

CONVERTER_VERSION = "e5s1-2"
PROMPTS = {"query": "query: ", "passage": "passage: "}
NORMALIZATION_FILE = "e5s1_normalization.json"


def convert_e5s1_pack(source: Path, out_dir: Path, spec: PackSpec) -> dict[str, Any]:
    """The registered converter (``converters.CONVERTERS["e5s1"]``)."""
    info = convert_e5s1(
        source, out_dir, languages=spec.languages, upstream=spec.upstream, license=spec.license
    )
    if spec.dimension and spec.dimension != info["dimension"]:
        raise PackError(
            f"{source.name} holds a {info['dimension']}-dimensional model, the catalog says {spec.dimension}"
        )
    if spec.prompts:
        info["prompts"] = dict(spec.prompts)
        _write_prompts(out_dir, info["prompts"])
    return info


def convert_e5s1(source: Path, out_dir: Path, *, languages: tuple[str, ...], upstream: str,
                 license: str) -> dict[str, Any]:  # fmt: skip
    """Write the folder; return what ``pack.json`` records about it."""
    e5 = E5File(source.read_bytes(), origin=source.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_model(e5, out_dir)
    _write_tokenizer(e5, out_dir)
    _write_sentence_transformers(e5, out_dir, languages, upstream, license)
    return {
        "dimension": e5.header.hidden,
        "prompts": dict(PROMPTS),
        "max_seq_length": e5.header.max_positions,
        "converter_version": CONVERTER_VERSION,
    }


def bert_state_dict(e5: E5File) -> dict[str, Any]:
    """The file's tensors under ``BertModel`` names, as float32 numpy arrays."""
    import numpy as np

    h, ff = e5.header.hidden, e5.header.ffn
    state: dict[str, Any] = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", (e5.header.vocab, h)),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos", (e5.header.max_positions, h)),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type", (e5.header.type_vocab, h)),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b", (h,)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
        "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm",
    }  # fmt: skip
    for layer in range(e5.header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, shape in shapes.items():
            state[prefix + names[short] + ".weight"] = e5.tensor(f"l{layer}.{short}.w", shape)
            state[prefix + names[short] + ".bias"] = e5.tensor(f"l{layer}.{short}.b", (shape[0],))
        for short in ("aln", "oln"):
            state[prefix + names[short] + ".weight"] = e5.tensor(f"l{layer}.{short}.w", (h,))
            state[prefix + names[short] + ".bias"] = e5.tensor(f"l{layer}.{short}.b", (h,))
    # BertModel always builds a pooler; the sentence embedding never uses it (mean pooling),
    # so it is stored as zeros rather than left to random initialisation with a warning.
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return state


def _write_model(e5: E5File, out_dir: Path) -> None:
    from safetensors.numpy import save_file

    h = e5.header
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",  # erf GELU, as the C
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.eps,
        "initializer_range": 0.02,
        "pad_token_id": e5.vocab.pad,
        "bos_token_id": e5.vocab.bos,
        "eos_token_id": e5.vocab.eos,
        "position_embedding_type": "absolute",
        "dtype": "float32",
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_file(bert_state_dict(e5), str(out_dir / "model.safetensors"), metadata={"format": "pt"})


def _char_class(codepoints: list[int]) -> str:
    """An Oniguruma character class of the codepoints, as ranges."""
    ranges: list[tuple[int, int]] = []
    for cp in sorted(codepoints):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)


UNREACHABLE = -1e9


def build_tokenizer(e5: E5File) -> Any:
    """The ``tokenizers.Tokenizer`` that reproduces the file's segmentation."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = e5.vocab
    chained = sorted(cp for out in vocab.normalization.values() for cp in out if cp in vocab.normalization)
    if chained:  # the Replaces below would then apply twice where the C applies once
        raise PackError(f"{e5.origin}: the normalization table maps to mapped codepoints ({chained[:5]})")
    # The C's Viterbi never takes the unk piece for text ("<unk>" typed is "▁<", "unk", ">"); with
    # a score no path can afford, the Unigram never does either. Unknown characters still get the
    # unk id: the pre-tokenizer below isolates each one, and the model falls back to ``unk_id``.
    pieces = [
        (piece, UNREACHABLE if index == vocab.unk else float(score))
        for index, (piece, score) in enumerate(zip(vocab.pieces, vocab.scores, strict=True))
    ]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk, byte_fallback=False))

    # The per-codepoint table: one Replace per distinct output (no output is itself mapped,
    # which the reader checks, so the order of the Replaces does not matter).
    by_output: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for cp, out in vocab.normalization.items():
        by_output[out].append(cp)
    steps: list[Any] = []
    for out, cps in by_output.items():
        content = "".join(map(chr, out))
        pattern = chr(cps[0]) if len(cps) == 1 else Regex(f"[{_char_class(cps)}]")
        steps.append(normalizers.Replace(pattern, content))
    # A leading space, then runs of spaces collapsed: the C's "collapse, then prepend a space
    # unless the text starts with one" in two steps; then spaces become the metaspace.
    steps += [
        normalizers.Prepend(" "),
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Replace(" ", META),
    ]
    tokenizer.normalizer = normalizers.Sequence(steps)

    covered = {ord(ch) for index, piece in enumerate(vocab.pieces) if index != vocab.unk for ch in piece}
    tokenizer.pre_tokenizer = pre_tokenizers.Split(
        Regex(f"[^{_char_class(sorted(covered))}]"), behavior="isolated"
    )
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    tokenizer.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tokenizer.add_special_tokens(
        [AddedToken(vocab.pieces[i], special=True, normalized=False)
         for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)]
    )  # fmt: skip
    return tokenizer


def _write_tokenizer(e5: E5File, out_dir: Path) -> None:
    vocab = e5.vocab
    build_tokenizer(e5).save(str(out_dir / "tokenizer.json"))
    # The file's own table, kept so the folder's tokenizer can be checked against the reference
    # segmentation (``e5tokenize.segmenter_from_folder``) after the E5S1 file is gone.
    table = {
        "about": "codepoint -> replacement codepoints, as in the E5S1 file; the special ids",
        "bos": vocab.bos, "eos": vocab.eos, "pad": vocab.pad, "unk": vocab.unk,
        "unk_score": float(vocab.scores[vocab.unk]),  # tokenizer.json's is UNREACHABLE
        "normalization": {str(cp): list(out) for cp, out in sorted(vocab.normalization.items())},
    }  # fmt: skip
    (out_dir / NORMALIZATION_FILE).write_text(json.dumps(table), encoding="utf-8")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": vocab.pieces[vocab.bos],
        "cls_token": vocab.pieces[vocab.bos],
        "eos_token": vocab.pieces[vocab.eos],
        "sep_token": vocab.pieces[vocab.eos],
        "pad_token": vocab.pieces[vocab.pad],
        "unk_token": vocab.pieces[vocab.unk],
        "model_max_length": e5.header.max_positions,
        "padding_side": "right",
        # "<s>" typed in a text is segmented like any other text, as the C does.
        "split_special_tokens": True,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def _write_prompts(out_dir: Path, prompts: dict[str, str]) -> None:
    config = {"prompts": dict(prompts), "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (out_dir / "config_sentence_transformers.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def _write_sentence_transformers(
    e5: E5File, out_dir: Path, languages: tuple[str, ...], upstream: str, license: str
) -> None:
    dimension = e5.header.hidden

    def dump(name: str, data: object) -> None:
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    dump("modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])  # fmt: skip
    dump("sentence_bert_config.json", {"max_seq_length": e5.header.max_positions, "do_lower_case": False})
    dump("1_Pooling/config.json", {
        "word_embedding_dimension": dimension, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })  # fmt: skip
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    _write_prompts(out_dir, PROMPTS)
    card_languages = "\n".join(f"- {lang}" for lang in languages)
    (out_dir / "README.md").write_text(
        f"---\nlanguage:\n{card_languages}\nlicense: {license.split()[0].lower()}\n"
        "library_name: sentence-transformers\npipeline_tag: sentence-similarity\n---\n\n"
        f"# {upstream} (converted by Ladder)\n\n"
        f"A {dimension}-dimensional text embedder converted from a 4-bit E5S1 file (converter "
        f"{CONVERTER_VERSION}); the weights are the 4-bit values, dequantised exactly.\n\n"
        'Prefix queries with "query: " and passages with "passage: " '
        '(`encode(texts, prompt_name="query")` or `prompt_name="passage"`).\n',
        encoding="utf-8",
    )
