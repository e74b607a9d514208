"""Named prompt templates, shared by data preparation and inference.

A template is a ``str.format`` string with a ``{problem}`` field. Training and inference
must build the prompt with the same call, ``build_prompt(problem, template, wrapper)``,
or the model is asked in a form it never saw (the contest's official inference fed the bare
problem while the kit trained on the alpaca prompt; docs/contest.md section 2).

- ``alpaca``: the contest kit's instruction prompt, exact text.
- ``minimal``: ``"{problem}\\n\\n### Response:"``, used by the phase-1 winners in both stages.
- ``vicuna``: MindFormers' llama preprocessing around the alpaca prompt (system text copied
  from mindformers/dataset/handler/alpaca_handler.py, MindFormers 1.9.0), i.e. the exact
  text the contest baseline trained on.
- ``chatml``: SmolLM2's chat format for one user turn.
- ``bare``: the problem alone (what the contest's inference script sent).

A *wrapper* (``WRAPPERS``) puts a prompt inside a conversation format at tokenisation time,
as MindFormers does: ``wrap("...### Response:", "vicuna")``.

The answer follows the prompt after ``answer_separator(prompt)``: one space, unless the
prompt already ends in whitespace (chatml ends with a newline); MindFormers writes
``ASSISTANT: {answer}</s>`` the same way.
"""
from __future__ import annotations

from pipeline.errors import PipelineError

ALPACA = ("Below is an instruction that describes a task. Write a response that appropriately "
          "completes the request.\n\n### Instruction:\n{problem}\n\n### Response:")
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's "
                 "questions.")

WRAPPERS: dict[str, str] = {
    "none": "{prompt}",
    "vicuna": VICUNA_SYSTEM + " USER: {prompt} ASSISTANT:",
    "chatml": "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
}

PROMPTS: dict[str, str] = {
    "alpaca": ALPACA,
    "minimal": "{problem}\n\n### Response:",
    "vicuna": WRAPPERS["vicuna"].replace("{prompt}", ALPACA),
    "chatml": WRAPPERS["chatml"].replace("{prompt}", "{problem}"),
    "bare": "{problem}",
}


def template_text(name_or_template: str) -> str:
    """The template string for a registered name, or the argument itself if it has a field.

    Raises PipelineError for an unknown name without ``{...}`` fields.
    """
    if name_or_template in PROMPTS:
        return PROMPTS[name_or_template]
    if "{" in name_or_template and "}" in name_or_template:
        return name_or_template
    raise PipelineError(f"unknown prompt template {name_or_template!r}; "
                        f"choose from {', '.join(PROMPTS)} or give a string with {{problem}}")


def render_prompt(name_or_template: str, **fields) -> str:
    """Fill a named (or literal) template: ``render_prompt("minimal", problem="...")``.

    Raises PipelineError when the template needs a field that was not given.
    """
    text = template_text(name_or_template)
    try:
        return text.format_map(fields)
    except KeyError as exc:
        raise PipelineError(f"prompt template needs field {exc.args[0]!r}") from exc


def render(name: str, problem: str) -> str:
    """Shorthand: the prompt for one problem."""
    return render_prompt(name, problem=problem)


def wrap(prompt: str, wrapper: str = "none") -> str:
    """Put a rendered prompt inside a conversation wrapper (``WRAPPERS``)."""
    if wrapper not in WRAPPERS:
        raise PipelineError(f"unknown prompt wrapper {wrapper!r}; choose from {', '.join(WRAPPERS)}")
    return WRAPPERS[wrapper].replace("{prompt}", prompt)


def build_prompt(problem: str, template: str = "minimal", wrapper: str = "none") -> str:
    """The exact text a model sees before its answer, in training and in inference."""
    return wrap(render_prompt(template, problem=problem), wrapper)


def full_template(template: str = "minimal", wrapper: str = "none") -> str:
    """The wrapped template as one ``{problem}`` string (for run manifests)."""
    return wrap(template_text(template), wrapper)


def answer_separator(prompt: str) -> str:
    """What goes between a prompt and its answer: '' after whitespace, else one space."""
    return "" if prompt[-1:].isspace() else " "
