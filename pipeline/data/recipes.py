"""Data recipes: YAML files under configs/data/ loaded into a typed, checked ``Recipe``.

A recipe says how raw contest rows become training data; every step is optional.
Steps run in this order (pipeline/data/prepare.py):

1. ``source``: ``generate: N`` rows with ``seed`` (optionally only ``types``), or ``file:``
   a user's train.json.
2. ``dedup``: drop exact (problem, solution) repeats.
3. ``split.test``: cut the test set by unique problem. ``test_scope: source`` (default) cuts it
   before any type is dropped, so it keeps the contest's type mix (the hidden test set covers
   every type); ``kept`` cuts it after ``drop_types`` and ``filters``.
4. ``drop_types`` and ``filters`` (``power_max_exponent``: drop powers with a larger N).
5. ``sampling``: ``mode`` natural | balanced | weights, ``total`` rows, per-type ``caps``,
   ``order`` shuffle | curriculum (easy types first) | source.
6. ``split.validation``: by unique problem, from the sampled rows.
7. ``answers``: ``round`` to k decimals (one int, or per type with ``default``), then
   ``working`` per type (rewrite.WORKING_STYLES).
8. ``prompt``: ``template`` (prompts.PROMPTS) and the ``wrapper`` applied at tokenisation.
9. ``output``: ``dir`` (default data/prepared/<name>), ``formats`` (jsonl, conversation,
   mindrecord), ``seq_length``, ``overlong`` (drop | truncate | error), ``tokenizer``.

``load_recipe`` rejects unknown keys, unknown type names and bad combinations with a
PipelineError naming the file and the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.data.generate import GENERATED_TYPES
from pipeline.data.prompts import PROMPTS, WRAPPERS
from pipeline.data.rewrite import WORKING_STYLES
from pipeline.errors import PipelineError
from pipeline.problems import TYPES

SAMPLING_MODES = ("natural", "balanced", "weights")
ORDERS = ("shuffle", "curriculum", "source")
FORMATS = ("jsonl", "conversation", "mindrecord")
OVERLONG = ("drop", "truncate", "error")
TOKENIZERS = ("smollm2",)
TEST_SCOPES = ("source", "kept")
# Curriculum order, easiest first: single-step integer work, then 2-decimal arithmetic,
# then the long-digit types no small model learns.
EASY_FIRST: tuple[str, ...] = ("area", "mass", "fraction", "add", "sub", "equation", "mean",
                               "sales", "discount", "power", "mul", "div", "sqrt", "function",
                               "english", "unknown")


@dataclass(frozen=True)
class SourceConfig:
    generate: int | None = None          # rows to generate, or
    file: str | None = None              # a train.json to import
    seed: int = 0
    types: tuple[str, ...] | None = None  # generator only


@dataclass(frozen=True)
class FilterConfig:
    power_max_exponent: int | None = None


@dataclass(frozen=True)
class SamplingConfig:
    mode: str = "natural"
    total: int | None = None
    weights: dict[str, float] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)
    order: str = "shuffle"


@dataclass(frozen=True)
class AnswersConfig:
    round: dict[str, int | None] = field(default_factory=dict)  # type or "default" -> k
    working: dict[str, str] = field(default_factory=dict)       # type -> style

    def decimals_for(self, type_name: str) -> int | None:
        return self.round.get(type_name, self.round.get("default"))


@dataclass(frozen=True)
class PromptConfig:
    template: str = "alpaca"
    wrapper: str = "none"


@dataclass(frozen=True)
class SplitConfig:
    test: float = 0          # fraction of unique problems (< 1) or a count (>= 1)
    validation: float = 0
    test_scope: str = "source"


@dataclass(frozen=True)
class OutputConfig:
    dir: str
    formats: tuple[str, ...] = FORMATS
    seq_length: int = 256
    overlong: str = "drop"
    tokenizer: str = "smollm2"


@dataclass(frozen=True)
class Recipe:
    name: str
    path: str
    source: SourceConfig
    output: OutputConfig
    description: str = ""
    seed: int = 0
    dedup: bool = True
    drop_types: tuple[str, ...] = ()
    filters: FilterConfig = FilterConfig()
    sampling: SamplingConfig = SamplingConfig()
    answers: AnswersConfig = AnswersConfig()
    prompt: PromptConfig = PromptConfig()
    split: SplitConfig = SplitConfig()
    raw: dict = field(default_factory=dict, compare=False, repr=False)


class _Section:
    """Reads one mapping of a recipe; every message names the file and the dotted key."""

    def __init__(self, data, where: str, path: str):
        self.where, self.path = where, path
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail(where or "recipe", "must be a mapping of keys")
        self.data = dict(data)
        self.used: set[str] = set()

    def fail(self, key: str, message: str):
        raise PipelineError(f"{key}: {message}", self.path)

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str, default=None):
        self.used.add(name)
        return self.data.get(name, default)

    def int(self, name, default=None, minimum: int = 0):
        value = self.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(self.key(name), f"must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, name, default=0.0):
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            self.fail(self.key(name), f"must be a number >= 0, got {value!r}")
        return value

    def bool(self, name, default):
        value = self.get(name, default)
        if not isinstance(value, bool):
            self.fail(self.key(name), f"must be true or false, got {value!r}")
        return value

    def choice(self, name, default, choices):
        value = self.get(name, default)
        if value not in choices:
            self.fail(self.key(name), f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def string(self, name, default=None):
        value = self.get(name, default)
        if value is not None and not isinstance(value, str):
            self.fail(self.key(name), f"must be a string, got {value!r}")
        return value

    def type_list(self, name, allowed=TYPES):
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, str) or not isinstance(value, list):
            self.fail(self.key(name), "must be a list of type names")
        for item in value:
            self.check_type(f"{self.key(name)}", item, allowed)
        return tuple(value)

    def type_map(self, name, check_value):
        value = self.get(name) or {}
        if not isinstance(value, dict):
            self.fail(self.key(name), "must be a mapping of type name -> value")
        out = {}
        for type_name, item in value.items():
            self.check_type(self.key(name), type_name)
            out[type_name] = check_value(f"{self.key(name)}.{type_name}", item)
        return out

    def check_type(self, key, type_name, allowed=TYPES):
        if type_name not in allowed:
            self.fail(key, f"unknown type {type_name!r}; known types: {', '.join(allowed)}")

    def finish(self):
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(self.key(unknown[0]), "unknown key; known keys here: "
                      + ", ".join(sorted(self.used)))


def _positive_int(section: _Section):
    def check(key, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            section.fail(key, f"must be an integer >= 0, got {value!r}")
        return value
    return check


def _positive_number(section: _Section):
    def check(key, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            section.fail(key, f"must be a number > 0, got {value!r}")
        return float(value)
    return check


def _parse_source(top: _Section) -> SourceConfig:
    s = _Section(top.get("source"), "source", top.path)
    generate, file = s.int("generate", None, minimum=1), s.string("file")
    if (generate is None) == (file is None):
        s.fail("source", "give exactly one of source.generate (rows) or source.file (path)")
    types = s.type_list("types", allowed=GENERATED_TYPES)
    if types is not None and file is not None:
        s.fail("source.types", "only applies to source.generate; use drop_types for a file")
    if file is not None and not Path(file).is_absolute():
        # Relative paths in a recipe are relative to the working directory (the repo root).
        file = str(Path(file))
    config = SourceConfig(generate=generate, file=file, seed=s.int("seed", 0), types=types)
    s.finish()
    return config


def _parse_round(section: _Section):
    value = section.get("round")
    if value is None:
        return {}
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            section.fail("answers.round", f"must be >= 0, got {value}")
        return {"default": value}
    if not isinstance(value, dict):
        section.fail("answers.round", "must be an integer or a mapping of type -> decimals")
    out = {}
    for key, item in value.items():
        if key != "default":
            section.check_type("answers.round", key)
        if item is not None and (isinstance(item, bool) or not isinstance(item, int) or item < 0):
            section.fail(f"answers.round.{key}", f"must be an integer >= 0 or null, got {item!r}")
        out[key] = item
    return out


def _parse_working(section: _Section):
    value = section.get("working")
    if value is None:
        return {}
    if isinstance(value, list):  # [add, sub] = the "signs" style for each
        value = {name: "signs" for name in value}
    if not isinstance(value, dict):
        section.fail("answers.working", "must be a list of types or a mapping type -> style")
    for type_name, style in value.items():
        section.check_type("answers.working", type_name)
        styles = WORKING_STYLES.get(type_name)
        if not styles:
            section.fail(f"answers.working.{type_name}",
                         f"no working for this type; working exists for {', '.join(WORKING_STYLES)}")
        if style not in styles:
            section.fail(f"answers.working.{type_name}",
                         f"unknown style {style!r}; choose from {', '.join(styles)}")
    return dict(value)


def recipe_from_dict(data, path: str = "<recipe>") -> Recipe:
    """Build and check a Recipe from a parsed YAML mapping (``path`` is only for messages)."""
    top = _Section(data, "", path)
    name = top.string("name") or Path(path).stem
    source = _parse_source(top)
    drop_types = top.type_list("drop_types") or ()

    f = _Section(top.get("filters"), "filters", path)
    filters = FilterConfig(power_max_exponent=f.int("power_max_exponent", None))
    f.finish()

    s = _Section(top.get("sampling"), "sampling", path)
    sampling = SamplingConfig(
        mode=s.choice("mode", "natural", SAMPLING_MODES), total=s.int("total", None, minimum=1),
        weights=s.type_map("weights", _positive_number(s)), caps=s.type_map("caps", _positive_int(s)),
        order=s.choice("order", "shuffle", ORDERS))
    s.finish()
    if sampling.mode in ("balanced", "weights") and sampling.total is None:
        s.fail("sampling.total", f"mode {sampling.mode} needs a total number of rows")
    if sampling.mode == "weights" and not sampling.weights:
        s.fail("sampling.weights", "mode weights needs at least one type weight")
    if sampling.weights and sampling.mode != "weights":
        s.fail("sampling.weights", f"weights are only used with mode: weights (mode is {sampling.mode})")
    for key, names in (("sampling.weights", sampling.weights), ("sampling.caps", sampling.caps)):
        for type_name in names:
            if type_name in drop_types:
                s.fail(f"{key}.{type_name}", "this type is removed by drop_types")

    a = _Section(top.get("answers"), "answers", path)
    answers = AnswersConfig(round=_parse_round(a), working=_parse_working(a))
    a.finish()
    for type_name in answers.working:
        if type_name in drop_types:
            a.fail(f"answers.working.{type_name}", "this type is removed by drop_types")

    p = _Section(top.get("prompt"), "prompt", path)
    template = p.string("template", "alpaca")
    if template not in PROMPTS and "{problem}" not in template:
        p.fail("prompt.template", f"unknown template {template!r}; choose from "
               f"{', '.join(PROMPTS)} or give a string containing {{problem}}")
    prompt = PromptConfig(template=template, wrapper=p.choice("wrapper", "none", tuple(WRAPPERS)))
    p.finish()

    sp = _Section(top.get("split"), "split", path)
    split = SplitConfig(test=sp.number("test", 0), validation=sp.number("validation", 0),
                        test_scope=sp.choice("test_scope", "source", TEST_SCOPES))
    sp.finish()
    for key in ("test", "validation"):
        value = getattr(split, key)
        if value >= 1 and value != int(value):
            sp.fail(f"split.{key}", f"a count must be whole (a fraction must be < 1), got {value}")
    if split.test < 1 and split.validation < 1 and split.test + split.validation >= 1:
        sp.fail("split", "test + validation fractions leave no training rows")

    o = _Section(top.get("output"), "output", path)
    formats = o.get("formats", list(FORMATS))
    if isinstance(formats, str) or not isinstance(formats, list) or not formats:
        o.fail("output.formats", f"must be a non-empty list from {', '.join(FORMATS)}")
    for item in formats:
        if item not in FORMATS:
            o.fail("output.formats", f"unknown format {item!r}; choose from {', '.join(FORMATS)}")
    output = OutputConfig(
        dir=o.string("dir") or str(Path("data") / "prepared" / name), formats=tuple(formats),
        seq_length=o.int("seq_length", 256, minimum=8), overlong=o.choice("overlong", "drop", OVERLONG),
        tokenizer=o.choice("tokenizer", "smollm2", TOKENIZERS))
    o.finish()

    recipe = Recipe(name=name, path=str(path), source=source, output=output,
                    description=top.string("description", "") or "", seed=top.int("seed", 0),
                    dedup=top.bool("dedup", True), drop_types=drop_types, filters=filters,
                    sampling=sampling, answers=answers, prompt=prompt, split=split,
                    raw=dict(data or {}))
    top.finish()
    return recipe


def load_recipe(path) -> Recipe:
    """Read and check a recipe YAML file. Raises PipelineError naming the file and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PipelineError("recipe not found", path) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise PipelineError(f"{where}not valid YAML ({getattr(exc, 'problem', exc)})", path) from exc
    if not isinstance(data, dict):
        raise PipelineError("a recipe must be a YAML mapping (name:, source:, ...)", path)
    return recipe_from_dict(data, str(path))
