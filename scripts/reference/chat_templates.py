#!/usr/bin/env python3
"""Reference renderings of non-ChatML chat templates by transformers' own Jinja renderer.

Writes engine/ml/tests/fixtures/ml/chat_templates.json: for each template (written for
inoculab's tests in the styles of Llama 3, Mistral and Gemma, not copied from any model),
the text transformers renders for a few conversations, with and without the generation
prompt, or the error it raises. engine/ml/tests/ml_chat_templates.rs renders the same with
minijinja and must agree to the byte.

Never run in CI (transformers is not a project dependency). Usage:
    /work/venv-ref/bin/python scripts/reference/chat_templates.py [OUT.json]
"""
import json
import os
import re
import sys

from transformers.utils.chat_template_utils import render_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "engine/ml/tests/fixtures/ml/chat_templates.json")


def rust_const(name):
    """A `pub const NAME: &str = "...";` string from engine/ml/src/testing.rs, unescaped."""
    src = open(os.path.join(ROOT, "engine/ml/src/testing.rs")).read()
    m = re.search(r'pub const ' + name + r': &str = "(.*?)";\n', src, re.S)
    return m.group(1).replace('\\"', '"').replace("\\\\", "\\")


# A Mistral-style template: no system role (it is folded into the first user turn), turns
# must alternate, answers close with the end-of-text token.
MISTRAL_STYLE = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set system = none %}"
    "{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.first and system %}{{- '[INST] ' + system.strip() + '\\n\\n' + message['content'].strip() + ' [/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'].strip() + ' [/INST]' }}{%- endif %}"
    "{%- else %}{{- ' ' + message['content'].strip() + eos_token }}{%- endif %}"
    "{%- endfor %}"
)

# A Gemma-style template: the assistant is called "model", turns close with <end_of_turn>,
# a system message is refused.
GEMMA_STYLE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)

TEMPLATES = [
    ("llama3", rust_const("TINY_LLAMA3_TEMPLATE"), "<|begin_of_text|>", "<|eot_id|>"),
    ("mistral", MISTRAL_STYLE, "<s>", "</s>"),
    ("gemma", GEMMA_STYLE, "<bos>", "<eos>"),
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "You always speak in Spanish."}, {"role": "user", "content": "  What is 2+2? "}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!\n"},
        {"role": "user", "content": "Crème brûlée, 🎉 and `code`?"},
    ],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Again"}],
]


def main():
    out = []
    for name, template, bos, eos in TEMPLATES:
        cases = []
        for conv in CONVERSATIONS:
            for gen in (False, True):
                case = {"messages": conv, "add_generation_prompt": gen}
                try:
                    text = render_jinja_template(
                        conversations=[conv], chat_template=template, add_generation_prompt=gen,
                        bos_token=bos, eos_token=eos,
                    )
                    # Older and newer transformers return (texts, masks) or texts alone.
                    if isinstance(text, tuple):
                        text = text[0]
                    case["text"] = text[0] if isinstance(text, list) else text
                except Exception as e:  # noqa: BLE001 -- the error is the expected outcome
                    case["error"] = str(e)
                cases.append(case)
        out.append({"name": name, "template": template, "bos": bos, "eos": eos, "cases": cases})
    with open(OUT, "w") as f:
        json.dump({"renderer": "transformers.utils.chat_template_utils.render_jinja_template", "templates": out}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {OUT}: {sum(len(t['cases']) for t in out)} cases")


if __name__ == "__main__":
    main()
