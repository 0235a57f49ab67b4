#!/usr/bin/env python3
"""Writes the hand-made seeds of tests/fuzz/seeds (committed; rerun only to
change them): small GGUF files (metadata, a vocabulary of each tokenizer
family with a chat template, a few tensors), --kv schemes, tokenizer text.
The other targets seed from files already in the repo (see Makefile: fuzz).
Plain struct packing, GGUF v3: no dependency."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9


def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = s(key) + struct.pack("<I", vtype)
    if vtype == U32:
        return out + struct.pack("<I", value)
    if vtype == F32:
        return out + struct.pack("<f", value)
    if vtype == STR:
        return out + s(value)
    etype, items = value
    out += struct.pack("<IQ", etype, len(items))
    for v in items:
        out += s(v) if etype == STR else struct.pack({I32: "<i", F32: "<f"}[etype], v)
    return out


def gguf(kvs, tensors):
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    offset, data = 0, b""
    for name, dims, ggml_type, blob in tensors:
        head += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", ggml_type, offset)
        data += blob + b"\0" * (-len(blob) % 32)
        offset = len(data)
    return head + b"\0" * (-len(head) % 32) + data


def llama_meta(tokenizer, tokens, extra):
    return [kv("general.architecture", STR, "llama"), kv("general.name", STR, "seed"),
            kv("llama.block_count", U32, 1), kv("llama.embedding_length", U32, 8),
            kv("llama.feed_forward_length", U32, 16), kv("llama.attention.head_count", U32, 2),
            kv("llama.attention.head_count_kv", U32, 1), kv("llama.context_length", U32, 64),
            kv("tokenizer.ggml.model", STR, tokenizer), kv("tokenizer.ggml.tokens", ARR, (STR, tokens)),
            kv("tokenizer.ggml.token_type", ARR, (I32, [3 if t.startswith("<") else 1 for t in tokens])),
            kv("tokenizer.ggml.bos_token_id", U32, 1), kv("tokenizer.ggml.eos_token_id", U32, 2)] + extra


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def f32_tensor(name, dims):
    n = 1
    for d in dims:
        n *= d
    return (name, dims, 0, struct.pack("<%df" % n, *[0.5] * n))


def main():
    os.makedirs(os.path.join(HERE, "seeds", "gguf"), exist_ok=True)
    spm = ["<unk>", "<s>", "</s>", "\u2581h", "e", "l", "o", "\u2581hello", "<0x41>"]
    bpe = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "ab", "\u0120", "\u0120ab", "h", "i"]
    files = {
        "spm-chatml.gguf": gguf(llama_meta("llama", spm, [kv("tokenizer.ggml.scores", ARR, (F32, [0.0] * len(spm))),
                                                           kv("tokenizer.chat_template", STR, CHATML)]),
                                [f32_tensor("token_embd.weight", [8, len(spm)]), f32_tensor("output_norm.weight", [8])]),
        "bpe-smollm.gguf": gguf(llama_meta("gpt2", bpe, [kv("tokenizer.ggml.merges", ARR, (STR, ["a b", "\u0120 ab"])),
                                                          kv("tokenizer.ggml.pre", STR, "smollm"),
                                                          kv("tokenizer.chat_template", STR, CHATML)]),
                                [f32_tensor("token_embd.weight", [8, len(bpe)])]),
        "empty-kv.gguf": gguf([], []),
    }
    for name, blob in files.items():
        open(os.path.join(HERE, "seeds", "gguf", name), "wb").write(blob)
    kvs = ["gqa:8", "mqa+local:1024/6+cla:2", "mla:512,64", "gqa:8+simlayer:0.5,1024,4", "mha+local:4096",
           "gqa:4+cla:3+local:128/2", "mqa+simlayer:1"]
    os.makedirs(os.path.join(HERE, "seeds", "kv"), exist_ok=True)
    for i, text in enumerate(kvs):
        open(os.path.join(HERE, "seeds", "kv", "%d.txt" % i), "w").write(text)
    texts = ["Hello, world 42!", "caf\u00e9 \u4e2d\u6587 \U0001F600", "<|im_start|>user\nhi<|im_end|>", "\xff\xfe\x00 bytes"]
    os.makedirs(os.path.join(HERE, "seeds", "tokenizer"), exist_ok=True)
    for i, text in enumerate(texts):
        open(os.path.join(HERE, "seeds", "tokenizer", "%d.txt" % i), "wb").write(text.encode("utf-8", "surrogatepass"))
    # chat target: template NUL system NUL user, one per family the renderer knows
    chats = [CHATML + "\0\0Hi there", "<|start_header_id|>\0Be brief.\0 What is 2+2? ",
             "<start_of_turn>\0sys\0\n user \n", "[INST] <<SYS>>\0\0hello", "no template here\0x\0y"]
    os.makedirs(os.path.join(HERE, "seeds", "chat"), exist_ok=True)
    for i, text in enumerate(chats):
        open(os.path.join(HERE, "seeds", "chat", "%d.txt" % i), "wb").write(text.encode())


if __name__ == "__main__":
    main()
