"""Write a tiny random-weight Qwen2 GGUF with Qwen2.5-Coder's fill-in-the-middle tokens, so a
real llama-server can serve `/infill` and chat in tests (the text it writes is noise; the wire
shapes, token counts, errors and cancellations are real).

    python scripts/make_tiny_model.py VOCAB_GGUF OUT_GGUF

VOCAB_GGUF is `models/ggml-vocab-qwen2.gguf` from the llama.cpp sources (scripts/
build_llama_server.sh leaves them in ~/.cache/reaper-lsp/llama.cpp/src). It needs the `gguf`
package from PyPI (and numpy, which it pulls in), in any Python: not a project dependency.

That vocabulary is Qwen1.5's: ids 151646.. are padding. Qwen2.5-Coder put its FIM and
repository tokens at exactly those ids, so they are written there, marked as control tokens and
named in the FIM metadata keys; llama.cpp then treats the model as FIM-capable and uses the
repo-level pattern for `input_extra`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import gguf
import numpy as np

# Qwen2.5-Coder's special tokens at their real ids.
FIM_TOKENS = {
    151659: "<|fim_prefix|>",
    151660: "<|fim_middle|>",
    151661: "<|fim_suffix|>",
    151662: "<|fim_pad|>",
    151663: "<|repo_name|>",
    151664: "<|file_sep|>",
}
FIM_KEYS = {
    "tokenizer.ggml.fim_pre_token_id": 151659,
    "tokenizer.ggml.fim_mid_token_id": 151660,
    "tokenizer.ggml.fim_suf_token_id": 151661,
    "tokenizer.ggml.fim_pad_token_id": 151662,
    "tokenizer.ggml.fim_rep_token_id": 151663,
    "tokenizer.ggml.fim_sep_token_id": 151664,
}
CONTROL = int(gguf.TokenType.CONTROL)
NORMAL = int(gguf.TokenType.NORMAL)

# Small enough to load in milliseconds and generate hundreds of tokens a second on one core.
N_EMBD = 32
N_HEAD = 4
N_HEAD_KV = 2
N_LAYER = 2
N_FF = 64
N_CTX_TRAIN = 4096

# Output rows of these tokens get large weights, so that even random weights write ASCII code
# pieces and newlines (GPT-2 byte-level text: Ġ is a space, Ċ a newline) instead of repeating
# the last input token or sampling from 150k mostly non-Latin pieces.
CODE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_()[]{}:=.,+-*ĠĊ")


def _field(reader: gguf.GGUFReader, key: str) -> Any:
    field = reader.get_field(key)
    if field is None:
        raise SystemExit(f"{key} missing from the vocabulary file")
    return field.contents()


def write_model(vocab_path: Path, out_path: Path, seed: int = 0) -> None:
    vocab = gguf.GGUFReader(str(vocab_path))
    if _field(vocab, "general.architecture") != "qwen2":
        raise SystemExit(f"{vocab_path} is not a qwen2 vocabulary")
    tokens: list[str] = list(_field(vocab, "tokenizer.ggml.tokens"))
    types: list[int] = list(_field(vocab, "tokenizer.ggml.token_type"))
    merges: list[str] = list(_field(vocab, "tokenizer.ggml.merges"))
    for token_id, text in FIM_TOKENS.items():
        tokens[token_id] = text
        types[token_id] = CONTROL
    n_vocab = len(tokens)

    writer = gguf.GGUFWriter(str(out_path), "qwen2")
    writer.add_name("reaper-lsp tiny qwen2 fim (random weights)")
    writer.add_context_length(N_CTX_TRAIN)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    writer.add_tokenizer_model(_field(vocab, "tokenizer.ggml.model"))
    writer.add_tokenizer_pre(_field(vocab, "tokenizer.ggml.pre"))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(int(_field(vocab, "tokenizer.ggml.eos_token_id")))
    writer.add_pad_token_id(int(_field(vocab, "tokenizer.ggml.padding_token_id")))
    writer.add_bos_token_id(int(_field(vocab, "tokenizer.ggml.bos_token_id")))
    writer.add_add_bos_token(False)
    writer.add_chat_template(_field(vocab, "tokenizer.chat_template"))
    for key, value in FIM_KEYS.items():
        writer.add_uint32(key, value)

    rng = np.random.default_rng(seed)
    head_dim = N_EMBD // N_HEAD
    n_kv = head_dim * N_HEAD_KV

    def weights(*shape: int) -> Any:
        # numpy shapes are ggml's `ne` reversed: (rows, columns) = (out, in).
        return (rng.standard_normal(shape) * 0.02).astype(np.float16)

    def ones(n: int) -> Any:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> Any:
        return np.zeros(n, dtype=np.float32)

    writer.add_tensor("token_embd.weight", weights(n_vocab, N_EMBD))
    pairs = zip(tokens, types, strict=True)
    code = np.array([kind == NORMAL and set(text) <= CODE_CHARS for text, kind in pairs])
    output = rng.standard_normal((n_vocab, N_EMBD)) * np.where(code, 1.0, 0.02)[:, None]
    writer.add_tensor("output.weight", output.astype(np.float16))
    writer.add_tensor("output_norm.weight", ones(N_EMBD))
    for i in range(N_LAYER):
        block = f"blk.{i}"
        writer.add_tensor(f"{block}.attn_norm.weight", ones(N_EMBD))
        writer.add_tensor(f"{block}.attn_q.weight", weights(N_EMBD, N_EMBD))
        writer.add_tensor(f"{block}.attn_k.weight", weights(n_kv, N_EMBD))
        writer.add_tensor(f"{block}.attn_v.weight", weights(n_kv, N_EMBD))
        writer.add_tensor(f"{block}.attn_q.bias", zeros(N_EMBD))
        writer.add_tensor(f"{block}.attn_k.bias", zeros(n_kv))
        writer.add_tensor(f"{block}.attn_v.bias", zeros(n_kv))
        writer.add_tensor(f"{block}.attn_output.weight", weights(N_EMBD, N_EMBD))
        writer.add_tensor(f"{block}.ffn_norm.weight", ones(N_EMBD))
        writer.add_tensor(f"{block}.ffn_gate.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_up.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_down.weight", weights(N_EMBD, N_FF))

    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vocab", type=Path, help="llama.cpp's models/ggml-vocab-qwen2.gguf")
    parser.add_argument("out", type=Path, help="where to write the model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_model(args.vocab, args.out, args.seed)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
