#!/usr/bin/python3
"""Golden renderings of chat templates, as transformers' apply_chat_template produces them.

transformers compiles a chat template in an ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks,
the loopcontrols extension and a `generation` block tag (its AssistantTracker, which renders its body), a
`tojson` filter that is json.dumps (ensure_ascii=False, indent/separators/sort_keys passed through), and the
globals raise_exception (raises TemplateError) and strftime_now (datetime.now().strftime). It renders with
messages, add_generation_prompt and the tokenizer's special tokens (bos_token, eos_token, unk_token, ...);
tools and documents are absent here. This script sets up the same environment with Debian's python3-jinja2
(no transformers needed), with the clock fixed so the output is reproducible, and renders every fixture under
src/test/resources/io/sparkdpo/data/chat-templates over a fixed set of conversations. The JUnit test
ChatTemplateGoldenTest renders the same with the project's Jinjava-based JinjaChatTemplate and requires
byte-identical strings (or the same raised message).

  /usr/bin/python3 tools/golden/chat_templates.py      # rewrites chat-templates/golden.json
"""
import datetime
import json
import os

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "src", "test", "resources", "io", "sparkdpo", "data", "chat-templates")
# The fixed "now" of strftime_now (the Java test injects the same instant).
NOW = datetime.datetime(2026, 7, 9, 14, 5, 0)

# Each family's special tokens as its tokenizer_config.json names them (only those set are passed, as
# transformers passes tokenizer.special_tokens_map).
FAMILIES = {
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen2.5": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "mistral-v0.3": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "mistral-v0.1": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "zephyr": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"},
    "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>",
                "pad_token": "<|im_end|>"},
    "gemma": {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"},
    "whitespace": {"bos_token": "<s>"},
    "jinja-features": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
}


def msg(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = {
    "user": [msg("user", "Hello")],
    "system-user": [msg("system", "You are terse."), msg("user", "What is 2+2?")],
    "multi-turn": [msg("user", "Hi there"), msg("assistant", "Hello! How can I help?"),
                   msg("user", "Name a whale.")],
    "system-multi-turn": [msg("system", "Answer in one word."), msg("user", "Colour of the sky?"),
                          msg("assistant", "Blue"), msg("user", "And grass?"), msg("assistant", "Green")],
    "unicode": [msg("user", "Grüße 你好 مرحبا 😀 — «ok»?"), msg("assistant", "¡Hola! ✓ naïve café")],
    "whitespace": [msg("system", "  Be kind.\n"), msg("user", "\n  padded question?  \n"),
                   msg("assistant", "  padded answer \t\n")],
    "newlines": [msg("user", "line one\nline two\n\nline four"), msg("assistant", "a\n b\n  c")],
    "jinja-syntax-in-content": [msg("user", "{{ 7 * 7 }} {% if true %}x{% endif %} {# c #}"), msg("assistant", "{%- raw %}")],
    "assistant-first": [msg("assistant", "I speak first."), msg("user", "Fine.")],
    "two-users": [msg("user", "One"), msg("user", "Two")],
}


class Generation(jinja2.ext.Extension):
    """transformers' `{% generation %}...{% endgeneration %}`: outside assistant-mask tracking it renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return NOW.strftime(fmt)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    env = environment()
    cases = []
    for family, specials in FAMILIES.items():
        with open(os.path.join(FIXTURES, family + ".jinja"), encoding="utf-8") as f:
            template = env.from_string(f.read())
        for name, messages in CONVERSATIONS.items():
            for add_generation_prompt in (True, False):
                case = {"template": family, "conversation": name, "add_generation_prompt": add_generation_prompt}
                try:
                    case["rendered"] = template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                       **specials)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
    out = {
        "generator": "tools/golden/chat_templates.py with jinja2 " + jinja2.__version__,
        "now": NOW.isoformat(),
        "special_tokens": FAMILIES,
        "conversations": CONVERSATIONS,
        "cases": cases,
    }
    path = os.path.join(FIXTURES, "golden.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum(1 for c in cases if "error" in c)
    print(f"wrote {path}: {len(cases)} renderings ({errors} raise)")


if __name__ == "__main__":
    main()
