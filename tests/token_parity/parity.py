#!/usr/bin/env python3
"""Token-count parity: `model-router tokens` (tiktoken-rs) against OpenAI's tiktoken.

The reference is OpenAI's own `tiktoken` package: its tokenizer code, its
encoding definitions (`tiktoken_ext.openai_public`: regex pattern and special
tokens) and its vocabulary files, checked against the sha256 that
`openai_public` itself declares.  The vocabulary files are read from the
tiktoken-rs crate source in the cargo registry, because this machine cannot
reach OpenAI's blob storage; the hash check proves they are OpenAI's files.

Chat bodies are counted in Python with the rules of OpenAI's cookbook "How to
count tokens with tiktoken" (`num_tokens_from_messages`,
`num_tokens_for_tools`), re-implemented below on top of the reference encodings.

Usage: python tests/token_parity/parity.py [--bin PATH] [--bpe-dir DIR] [--jobs N]
Needs only the standard library and `tiktoken`.  Exit 0 only if every
comparison matched and at least one ran.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import inspect
import json
import os
import random
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
ENCODINGS = ("o200k_base", "cl100k_base")
TIKTOKEN_RS_VERSION = "0.12.1"
CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"


def die(message: str) -> None:
    print(f"parity.py: error: {message}", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(1)


# --------------------------------------------------------------------------
# Reference encodings: OpenAI's tiktoken with OpenAI's verified vocabulary.
# --------------------------------------------------------------------------


def default_bpe_dir() -> str | None:
    homes = []
    if os.environ.get("CARGO_HOME"):
        homes.append(os.environ["CARGO_HOME"])
    homes.append(os.path.join(os.path.expanduser("~"), ".cargo"))
    for home in homes:
        pattern = os.path.join(
            home, "registry", "src", "*", f"tiktoken-rs-{TIKTOKEN_RS_VERSION}", "assets"
        )
        for candidate in sorted(glob.glob(pattern)):
            if all(
                os.path.isfile(os.path.join(candidate, f"{name}.tiktoken"))
                for name in ENCODINGS
            ):
                return candidate
    return None


def declared_hashes_in_source(openai_public) -> dict[str, str]:
    """`expected_hash` per encoding file, read from openai_public's source text."""
    source = inspect.getsource(openai_public)
    found = {}
    for match in re.finditer(
        r'/([A-Za-z0-9_]+)\.tiktoken"\s*,\s*expected_hash\s*=\s*"([0-9a-f]{64})"', source
    ):
        found[match.group(1)] = match.group(2)
    return found


def load_reference_encodings(bpe_dir: str):
    """Builds tiktoken.Encoding objects for ENCODINGS from the local .tiktoken files.

    `openai_public.<encoding>()` is called as is, with only its file loader
    swapped for one that reads `bpe_dir/<file>.tiktoken`, refuses it unless its
    sha256 equals the `expected_hash` the constructor passes (OpenAI's declared
    hash), and then parses it with tiktoken's own `load_tiktoken_bpe`.
    """
    import tiktoken
    import tiktoken.load
    from tiktoken_ext import openai_public

    source_hashes = declared_hashes_in_source(openai_public)
    verified: dict[str, str] = {}
    original_loader = openai_public.load_tiktoken_bpe

    def local_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        file_name = url.rsplit("/", 1)[-1]
        path = os.path.join(bpe_dir, file_name)
        if not expected_hash:
            die(f"tiktoken_ext.openai_public declared no expected_hash for {url}")
        written = source_hashes.get(file_name.removesuffix(".tiktoken"))
        if written is not None and written != expected_hash:
            die(
                f"hash passed for {file_name} ({expected_hash}) differs from the one "
                f"written in {openai_public.__file__} ({written})"
            )
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            die(f"cannot read {path}: {e}")
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_hash:
            die(
                f"{path}: sha256 {actual} != expected_hash {expected_hash} declared by "
                f"tiktoken_ext.openai_public for {url}"
            )
        verified[file_name] = actual
        # Parse with tiktoken's own parser; caching off so nothing is written
        # and no URL is ever fetched (the path is local, already verified).
        saved = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = ""
        try:
            return tiktoken.load.load_tiktoken_bpe(path, expected_hash)
        finally:
            if saved is None:
                del os.environ["TIKTOKEN_CACHE_DIR"]
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = saved

    encodings = {}
    openai_public.load_tiktoken_bpe = local_loader
    try:
        for name in ENCODINGS:
            constructor = openai_public.ENCODING_CONSTRUCTORS[name]
            params = constructor()
            encodings[name] = tiktoken.Encoding(**params)
    finally:
        openai_public.load_tiktoken_bpe = original_loader
    for name in ENCODINGS:
        if f"{name}.tiktoken" not in verified:
            die(f"openai_public.{name}() did not load {name}.tiktoken through the verified loader")
    return encodings, verified, tiktoken.__version__, openai_public.__file__


def self_check_reference(encodings) -> None:
    """Token ids published in OpenAI's cookbook "How to count tokens with
    tiktoken" (section 5, compare_encodings), so a wrong vocabulary or pattern
    cannot slip through."""
    published = [
        ("cl100k_base", "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
        ("o200k_base", "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
        ("cl100k_base", "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
        ("o200k_base", "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
        ("cl100k_base", "お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]),
        ("o200k_base", "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
    ]
    for name, text, expected in published:
        got = encodings[name].encode_ordinary(text)
        if got != expected:
            die(f"reference self-check: {name} {text!r} gives {got}, cookbook published {expected}")


# --------------------------------------------------------------------------
# Reference counting rules (OpenAI cookbook, "How to count tokens with tiktoken").
# --------------------------------------------------------------------------

FUNC_INIT = {"o200k_base": 7, "cl100k_base": 10}  # gpt-4o family / gpt-4, gpt-3.5-turbo
PROP_INIT = 3
PROP_KEY = 3
ENUM_INIT = -3
ENUM_ITEM = 3
FUNC_END = 12


def ordinary(encoding, text: str) -> int:
    # User text is billed as text: special-token markers are plain characters.
    return len(encoding.encode_ordinary(text))


def num_tokens_from_messages(messages, encoding) -> int:
    """Cookbook `num_tokens_from_messages` (gpt-4o / gpt-4-0613 branch), with
    `content` also allowed to be an array of parts (each text part's text)."""
    tokens_per_message = 3
    tokens_per_name = 1
    num_tokens = 0
    for message in messages:
        num_tokens += tokens_per_message
        for key, value in message.items():
            if key == "content" and isinstance(value, list):
                for part in value:
                    if part.get("type") == "text":
                        num_tokens += ordinary(encoding, part["text"])
                    else:
                        raise ValueError(f"corpus has a non-text part {part!r}")
            elif isinstance(value, str):
                num_tokens += ordinary(encoding, value)
            else:
                raise ValueError(f"corpus has a non-string message value {key}={value!r}")
            if key == "name":
                num_tokens += tokens_per_name
    num_tokens += 3  # every reply is primed with <|start|>assistant<|message|>
    return num_tokens


def num_tokens_for_tools(functions, encoding_name: str, encoding) -> int:
    """Cookbook `num_tokens_for_tools`, tool part only (messages counted apart).
    `functions` holds `{"type": "function", "function": {...}}` items."""
    func_init = FUNC_INIT[encoding_name]
    func_token_count = 0
    if len(functions) > 0:
        for f in functions:
            func_token_count += func_init
            function = f["function"]
            f_name = function["name"]
            f_desc = function["description"]
            if f_desc.endswith("."):
                f_desc = f_desc[:-1]
            line = f_name + ":" + f_desc
            func_token_count += ordinary(encoding, line)
            if len(function["parameters"]["properties"]) > 0:
                func_token_count += PROP_INIT
                for key in list(function["parameters"]["properties"].keys()):
                    func_token_count += PROP_KEY
                    p_name = key
                    p_type = function["parameters"]["properties"][key]["type"]
                    p_desc = function["parameters"]["properties"][key]["description"]
                    if "enum" in function["parameters"]["properties"][key].keys():
                        func_token_count += ENUM_INIT
                        for item in function["parameters"]["properties"][key]["enum"]:
                            func_token_count += ENUM_ITEM
                            func_token_count += ordinary(encoding, item)
                    if p_desc.endswith("."):
                        p_desc = p_desc[:-1]
                    line = f"{p_name}:{p_type}:{p_desc}"
                    func_token_count += ordinary(encoding, line)
        func_token_count += FUNC_END
    return func_token_count


def completions_prompt_tokens(prompt, encoding) -> int:
    """Legacy completions: a string, a list of strings, a token list, or a
    list of token lists; token ids count one each."""
    if isinstance(prompt, str):
        return ordinary(encoding, prompt)
    total = 0
    for item in prompt:
        if isinstance(item, str):
            total += ordinary(encoding, item)
        elif isinstance(item, int):
            total += 1
        elif isinstance(item, list) and all(isinstance(t, int) for t in item):
            total += len(item)
        else:
            raise ValueError(f"corpus has a bad prompt item {item!r}")
    return total


def reference_body_tokens(path: str, body: bytes, encoding_name: str, encoding) -> int:
    request = json.loads(body.decode("utf-8"))
    if path == COMPLETIONS_PATH:
        return completions_prompt_tokens(request["prompt"], encoding)
    total = num_tokens_from_messages(request["messages"], encoding)
    if request.get("tools"):
        total += num_tokens_for_tools(request["tools"], encoding_name, encoding)
    if request.get("functions"):
        # Legacy `functions`: the same definitions without the wrapper.
        wrapped = [{"type": "function", "function": f} for f in request["functions"]]
        total += num_tokens_for_tools(wrapped, encoding_name, encoding)
    return total


# --------------------------------------------------------------------------
# Corpus.
# --------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    data: bytes
    chat_path: str | None = None  # None: plain text
    published: dict = field(default_factory=dict)


def read_sections(path: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    sections = []
    for chunk in re.split(r"^=== ", text, flags=re.M)[1:]:
        title, _, body = chunk.partition("\n")
        sections.append((title.strip(), body.strip("\n")))
    return sections


def committed_texts() -> list[tuple[str, str]]:
    texts = []
    sections = read_sections(os.path.join(CORPUS, "multilingual.txt"))
    texts += [(f"multilingual/{title}", body) for title, body in sections]
    texts.append(("multilingual/all", "\n\n".join(body for _, body in sections)))
    for path in sorted(glob.glob(os.path.join(CORPUS, "code", "*"))) + [
        os.path.join(CORPUS, "sample.json")
    ]:
        with open(path, encoding="utf-8", newline="") as f:
            texts.append((os.path.relpath(path, CORPUS), f.read()))
    return texts


SPECIAL_MARKERS = [
    "<|endoftext|>", "<|endofprompt|>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|im_start|>", "<|im_end|>", "<|start|>", "<|end|>",
    "<|message|>", "<|channel|>", "<|return|>", "<|startoftext|>", "<|reserved_200000|>",
]


def generated_texts() -> list[tuple[str, str]]:
    t: list[tuple[str, str]] = [
        ("empty", ""),
        ("space", " "),
        ("spaces_3", "   "),
        ("newline", "\n"),
        ("crlf", "\r\n"),
        ("newlines_mixed", "\n\n\r\n\r\r\n \n\t\n"),
        ("tab", "\t"),
        ("tabs_and_spaces", "\t \t  \t\t   x\t\ty  \n\t"),
        ("unicode_spaces", "a\u00a0b\u2002c\u2003d\u3000e\u200bf\u2028g\u2029h\ufeffi\u0085j"),
        ("control_chars", "nul\x00bel\x07esc\x1b[31mred\x1b[0m del\x7f"),
        ("hello_world", "hello world"),
        ("numbers", "0 1 12 123 1234 12345 123456 1234567 3.14159 -2.5e-10 1,000,000 0x1F 007 ٣٤٥ ௧௨௩ ½ ²"),
        ("long_number", "".join(str(i) for i in range(2000))),
        ("urls", "https://example.com/a/b?c=1&d=%20x#frag http://[::1]:8080/ ftp://user:pw@host/path "
                 "mailto:someone@example.org www.例え.jp/パス?q=検索 https://xn--e1afmkfd.xn--p1ai/"),
        ("punctuation", "!!!??? ... --- ___ *** ### @@@ $$$ %%% ^^^ &&& ((())) [[[]]] {{{}}} <<<>>> ||| \\\\ // ~~ ``` '''" ),
        ("contractions", "I'm you're he's we've they'll she'd it's Don'T WE'RE I'M y'all o'clock"),
        ("emoji_basic", "😀😃😄😁 🙂 ❤️ 👍🏽 👍🏿 ✨ 🎉"),
        ("emoji_zwj", "👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 🏴‍☠️ 🧑🏿‍🤝‍🧑🏻 👁️‍🗨️ 🐻‍❄️"),
        ("emoji_flags", "🇺🇸🇯🇵🇫🇷🇩🇪🇧🇷🇮🇳🇨🇳🇰🇷 🏴󠁧󠁢󠁳󠁣󠁴󠁿 🏴󠁧󠁢󠁷󠁬󠁳󠁿 🇦"),
        ("emoji_keycaps", "1️⃣ 2️⃣ #️⃣ *️⃣ 🔟 ©️ ®️ ™️"),
        ("combining", "e\u0301 a\u0300\u0316 n\u0303 Z\u0351\u0308\u0334a\u0362\u0315l\u0327\u0358g\u0334o\u035d "
                      "\u1100\u1161\u11a8 \u0915\u094d\u0937 \u0627\u064e\u0644\u0652"),
        ("zalgo_long", "".join(ch + "\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307" for ch in "tokenizer" * 20)),
        ("surrogate_plane_chars", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝟙𝟚𝟛 𓀀𓀁 𠀀𠀁 \U00010000\U0010fffd"),
        ("recent_unicode", "Kawi \U00011f04\U00011f05\U00011f06 Garay \U00010d4a\U00010d4b Todhri \U000105c0\U000105c1 "
                           "Sunuwar \U00011bc0\U00011bc1 emoji15 \U0001fae8\U0001fa77 emoji16 \U0001fae9\U0001fac6"),
        ("special_markers", " ".join(SPECIAL_MARKERS)),
        ("special_markers_glued", "".join(SPECIAL_MARKERS) + "<|endoftext|>text<|endoftext|>"),
        ("special_marker_partial", "<|endoftext <|endoftext| |endoftext|> < |endoftext| > <||> <|>"),
        ("endoftext_alone", "<|endoftext|>"),
        ("json_escaped", json.dumps({"a": "b\n\"c\"", "emoji": "😀", "arr": [1, None, True]}, ensure_ascii=True)),
        ("markdown", "# Title\n\n- item **bold** _it_ `code`\n\n```python\nprint('x')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"),
        ("whitespace_heavy_code", "def f():\n" + "".join(" " * (4 * d) + f"if x{d}:\n" for d in range(1, 25)) + " " * 100 + "pass\n"),
        ("trailing_whitespace", "line with trailing spaces   \nnext\t\t\n   \n\n\n   "),
        ("base64", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="),
        ("hex_dump", " ".join(f"{b:02x}" for b in range(256))),
        ("all_latin1", "".join(chr(c) for c in range(0x20, 0x250))),
        ("apostrophe_variants", "it's it’s it‘s IT'S it`s l'été d’accord"),
    ]
    # Repeated characters (kept to a few thousand: BPE merging of a single
    # long piece is quadratic in both implementations).
    for name, ch, n in [("a", "a", 3000), ("space", " ", 3000), ("newline", "\n", 3000),
                        ("digit", "7", 3000), ("dot", ".", 3000), ("han", "字", 2000),
                        ("emoji", "😀", 1000), ("ab", "ab", 1500), ("tab", "\t", 2000),
                        ("cyrillic", "я", 2000)]:
        t.append((f"repeat_{name}_{n}", ch * n))
    return t


# Seeded fuzz: code points from many scripts, whitespace, digits, marks.
FUZZ_RANGES = [
    (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0x09, 0x0D), (0xA0, 0x24F), (0x300, 0x36F),
    (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F),
    (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2190, 0x21FF),
    (0x3000, 0x303F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF),
    (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF), (0x1D400, 0x1D7FF), (0x20000, 0x2A6DF),
    (0xE0020, 0xE007F), (0xFE00, 0xFE0F),
]


def fuzz_text(rng: random.Random, length: int) -> str:
    out = []
    while len(out) < length:
        lo, hi = rng.choice(FUZZ_RANGES)
        run = rng.randint(1, 12)
        for _ in range(run):
            out.append(chr(rng.randint(lo, hi)))
        if rng.random() < 0.3:
            out.append(rng.choice([" ", " ", "\n", "\t", "  ", "\r\n", "'s", "'LL", "1234"]))
    return "".join(out[:length])


WORDS = {
    "en": "the router counts tokens before every request reaches the upstream model and "
          "the bill must agree with it exactly".split(),
    "zh": ["路由器", "计算", "令牌", "数量", "请求", "模型", "上游", "费用", "。", "，"],
    "ja": ["トークン", "を", "数える", "東京", "ルーター", "です", "。", "、", "ひらがな"],
    "ko": ["토큰", "계산", "요청", "모델", "라우터", "입니다", "."],
    "ar": ["الموجه", "يحسب", "الرموز", "قبل", "الطلب", "النموذج", "."],
    "hi": ["राउटर", "टोकन", "गिनता", "है", "अनुरोध", "मॉडल", "।"],
    "ru": ["маршрутизатор", "считает", "токены", "запрос", "модель", "Ёлка", "."],
    "emoji": ["😀", "👨‍👩‍👧", "🇯🇵", "🚀", "✅", "🔥"],
    "num": ["42", "3.14", "2024-07-01", "1,000", "0xFF", "1e9"],
}


def long_mixed_text(rng: random.Random, target_bytes: int) -> str:
    parts = []
    size = 0
    langs = list(WORDS)
    while size < target_bytes:
        lang = rng.choice(langs)
        sentence = " ".join(rng.choice(WORDS[lang]) for _ in range(rng.randint(3, 15)))
        sep = rng.choice([" ", "\n", "\n\n", "\t", " — "])
        parts.append(sentence + sep)
        size += len(sentence.encode()) + len(sep.encode())
    return "".join(parts)


def plain_cases(rng: random.Random) -> list[Case]:
    texts = committed_texts() + generated_texts()
    for i in range(16):
        texts.append((f"fuzz/{i:02d}", fuzz_text(rng, rng.choice([5, 50, 300, 2000]))))
    code = "".join(body for name, body in texts if name.startswith("code/"))
    multilingual = "\n\n".join(body for name, body in texts if name.startswith("multilingual/") and name != "multilingual/all")
    big_code = (code + "\n") * (100_000 // max(1, len(code.encode())) + 1)
    texts += [
        ("long/mixed_languages_120k", long_mixed_text(rng, 120_000)),
        ("long/code_repeated_100k+", big_code),
        ("long/multilingual_repeated_100k+", (multilingual + "\n") * (100_000 // len(multilingual.encode()) + 1)),
        ("long/fuzz_100k+", fuzz_text(rng, 40_000)),
    ]
    for name, text in texts:
        if name.startswith("long/") and len(text.encode()) < 100_000:
            die(f"long case {name} is only {len(text.encode())} bytes")
    return [Case(f"text/{name}", text.encode("utf-8")) for name, text in texts]


def random_tool(rng: random.Random, index: int, pool: list[str]) -> dict:
    props = {}
    for p in range(rng.randint(0, 4)):
        prop = {
            "type": rng.choice(["string", "integer", "number", "boolean", "array"]),
            "description": rng.choice(pool)[: rng.randint(0, 80)] + rng.choice(["", ".", "..", " ."]),
        }
        if rng.random() < 0.4:
            prop["enum"] = [rng.choice(pool)[: rng.randint(1, 12)] for _ in range(rng.randint(1, 5))]
        props[rng.choice(["location", "unit", "q", "日付", "ville", "n", "mode"]) + f"_{p}"] = prop
    return {
        "type": "function",
        "function": {
            "name": f"fn_{index}_" + rng.choice(["search", "lookup", "get_weather", "book"]),
            "description": rng.choice(pool)[: rng.randint(0, 120)] + rng.choice(["", "."]),
            "parameters": {"type": "object", "properties": props, "required": list(props)[:1]},
        },
    }


def random_message(rng: random.Random, pool: list[str]) -> dict:
    message = {"role": rng.choice(["system", "developer", "user", "assistant", "tool", "user"])}
    if rng.random() < 0.5:
        parts = [{"type": "text", "text": rng.choice(pool)} for _ in range(rng.randint(1, 3))]
        message["content"] = parts
    else:
        message["content"] = rng.choice(pool)
    if rng.random() < 0.3:
        message["name"] = rng.choice(["alice", "bob_2", "山田", "example_user", "x"])
    if message["role"] == "tool":
        message["tool_call_id"] = f"call_{rng.randrange(10**8)}"
    # Key order must not matter.
    keys = list(message)
    rng.shuffle(keys)
    return {k: message[k] for k in keys}


def chat_cases(rng: random.Random, plain: list[Case]) -> list[Case]:
    cases = []
    with open(os.path.join(CORPUS, "chat_bodies.json"), encoding="utf-8") as f:
        for item in json.load(f):
            kind = "completions" if item["path"] == COMPLETIONS_PATH else "chat"
            cases.append(Case(
                f"{kind}/{item['name']}",
                json.dumps(item["body"], ensure_ascii=False).encode(),
                item["path"],
                item.get("published", {}),
            ))
    short = [c.data.decode() for c in plain if len(c.data) <= 3000]
    pool = [s for s in short if s] + SPECIAL_MARKERS
    for i in range(16):
        body = {"model": rng.choice(["gpt-4o", "gpt-4.1-mini", "gpt-3.5-turbo"]),
                "messages": [random_message(rng, pool) for _ in range(rng.randint(1, 8))]}
        if rng.random() < 0.6:
            body["tools"] = [random_tool(rng, t, pool) for t in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            body["max_tokens"] = rng.randint(1, 4096)
        text = json.dumps(body, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2]))
        cases.append(Case(f"chat/random_{i:02d}", text.encode(), CHAT_PATH))
    # Every plain text up to 20 KB again, as message content: grouped ten to
    # a body, alternating roles, string content and content-part arrays.
    texts = [c.data.decode() for c in plain if 0 < len(c.data) <= 20_000]
    roles = ["system", "user", "assistant", "developer", "user", "tool"]
    for start in range(0, len(texts), 10):
        messages = []
        for j, text in enumerate(texts[start:start + 10]):
            message = {"role": roles[j % len(roles)]}
            if j % 3 == 1:
                message["content"] = [{"type": "text", "text": text}]
            else:
                message["content"] = text
            if j % 4 == 2:
                message["name"] = f"n{j}"
            messages.append(message)
        body = {"model": "gpt-4o", "messages": messages}
        cases.append(Case(f"chat/texts_{start // 10:02d}", json.dumps(body).encode(), CHAT_PATH))
    # One long chat body (>100 KB of content).
    long_text = next(c.data.decode() for c in plain if c.name == "text/long/mixed_languages_120k")
    body = {"messages": [{"role": "user", "content": long_text},
                         {"role": "assistant", "name": "bot", "content": long_text[:5000]}]}
    cases.append(Case("chat/long_120k", json.dumps(body, ensure_ascii=False).encode(), CHAT_PATH))
    # Legacy completions, generated.
    for i in range(6):
        kind = i % 3
        if kind == 0:
            prompt = rng.choice(pool)
        elif kind == 1:
            prompt = [rng.choice(pool) for _ in range(rng.randint(1, 4))]
        else:
            prompt = [[rng.randrange(100_000) for _ in range(rng.randint(0, 50))] for _ in range(3)]
        body = {"model": "gpt-3.5-turbo-instruct", "prompt": prompt}
        cases.append(Case(f"completions/random_{i}", json.dumps(body).encode(), COMPLETIONS_PATH))
    return cases


# --------------------------------------------------------------------------
# Running and comparing.
# --------------------------------------------------------------------------


def run_cli(binary: str, case: Case, encoding_name: str) -> tuple[int | None, str]:
    args = [binary, "tokens", "--encoding", encoding_name]
    if case.chat_path is not None:
        args += ["--chat", "--path", case.chat_path]
    proc = subprocess.run(args, input=case.data, capture_output=True, timeout=120)
    out = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or not out.isdigit():
        err = proc.stderr.decode("utf-8", "replace").strip()
        return None, f"exit {proc.returncode}, stdout {out!r}, stderr {err!r}"
    return int(out), ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join(REPO, "target", "debug", "model-router"),
                        help="model-router binary (default: target/debug/model-router)")
    parser.add_argument("--bpe-dir", default=None,
                        help="directory holding o200k_base.tiktoken and cl100k_base.tiktoken "
                             f"(default: tiktoken-rs-{TIKTOKEN_RS_VERSION}/assets under $CARGO_HOME or ~/.cargo)")
    parser.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2),
                        help="CLI processes run at once")
    parser.add_argument("--seed", type=int, default=20240701, help="corpus seed")
    args = parser.parse_args()

    started = time.monotonic()
    binary = args.bin if os.path.isabs(args.bin) else os.path.abspath(args.bin)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        die(f"model-router binary not found at {binary}; build it with `cargo build --bin model-router`")
    bpe_dir = args.bpe_dir or default_bpe_dir()
    if not bpe_dir or not os.path.isdir(bpe_dir):
        die(f"no .tiktoken directory (tried {args.bpe_dir or '$CARGO_HOME / ~/.cargo registry'}); pass --bpe-dir")

    try:
        encodings, verified, version, source = load_reference_encodings(bpe_dir)
    except ImportError as e:
        die(f"cannot import tiktoken ({e}); run `.venv/bin/pip install tiktoken`")
    self_check_reference(encodings)
    print(f"reference: tiktoken {version} ({source})")
    for file_name, digest in sorted(verified.items()):
        print(f"  {os.path.join(bpe_dir, file_name)} sha256 {digest} = openai_public expected_hash")

    rng = random.Random(args.seed)
    plain = plain_cases(rng)
    chat = chat_cases(rng, plain)
    cases = plain + chat

    passed = failed = 0
    jobs = []
    for case in cases:
        for name in ENCODINGS:
            encoding = encodings[name]
            if case.chat_path is None:
                text = case.data.decode("utf-8")
                expected = ordinary(encoding, text)
                # Self-check of the reference: it must round-trip the text.
                if encoding.decode(encoding.encode_ordinary(text)) != text:
                    die(f"reference does not round-trip {case.name}")
            else:
                expected = reference_body_tokens(case.chat_path, case.data, name, encoding)
                published = case.published.get(name)
                if published is not None and published != expected:
                    print(f"REFERENCE MISMATCH {case.name} [{name}]: cookbook published "
                          f"{published}, reference computes {expected}")
                    failed += 1
            jobs.append((case, name, expected))

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda job: run_cli(binary, job[0], job[1]), jobs))

    for (case, name, expected), (got, error) in zip(jobs, results):
        if got is None:
            failed += 1
            print(f"MISMATCH {case.name} [{name}]: tiktoken {expected}, model-router failed: {error}")
        elif got != expected:
            failed += 1
            print(f"MISMATCH {case.name} [{name}]: tiktoken {expected}, model-router {got}")
        else:
            passed += 1

    n_plain = sum(1 for c in cases if c.chat_path is None)
    print(f"{len(cases)} cases ({n_plain} texts, {len(cases) - n_plain} request bodies) x "
          f"{len(ENCODINGS)} encodings, {sum(len(c.data) for c in cases)} bytes, "
          f"{time.monotonic() - started:.1f}s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
