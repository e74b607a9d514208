"""The sidebar's "Train a new adapter" form: preset, data recipe, LoRA shape, steps.

The LoRA fields default to the selected preset's own shape. The training data is a
data recipe (configs/data/*.yaml); when its prepared MindRecord is missing, the job
prepares it first (`pipeline data prepare`) and then trains on it, so a fresh clone
can train from the sidebar alone.
"""
from __future__ import annotations

import streamlit as st

from dashboard import data, derive
from pipeline import jobs
from pipeline.errors import PipelineError

TARGETS = list(derive.LORA_TARGETS)


def train_plan(preset: str, recipe: str, name: str, rank: int, alpha: float, targets: list[str],
               steps: int) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(first stages, train argv) for the job; writes the run's train_config.yaml."""
    target = data.run_path(name)
    config = jobs.write_train_config(jobs.REPO_ROOT / preset, target / "train_config.yaml",
                                     int(rank), float(alpha), targets or None)
    prepared = data.prepared_dir(recipe)
    first = []
    if not (prepared / "train.mindrecord").is_file():
        first.append(("prepare data", jobs.pipeline_argv(
            "data", "prepare", "--recipe", jobs.REPO_ROOT / data.data_recipes()[recipe],
            "--out", prepared)))
    argv = jobs.train_argv(config, name, int(steps), data.results_dir()) + \
        ["--data", str(prepared / "train.mindrecord")]
    return first, argv


def form() -> None:
    """Draw the form; on submit start the job (or show why not)."""
    presets = data.preset_configs()
    recipes = list(data.data_recipes())
    if not presets or not recipes:
        st.caption("No CPU preset (configs/*.yaml) or data recipe (configs/data/*.yaml) found.")
        return
    preset = st.selectbox("Preset", presets, key="train_preset", format_func=lambda p: p.split("/")[-1],
                          help="configs/<preset>.yaml; the LoRA fields below start from its own.")
    info = data.preset_info(preset)
    lora = info.get("lora") or {}
    suggested = data.preset_recipe(preset)
    recipe = st.selectbox("Training data (recipe)", recipes, key=f"train_recipe_{preset}",
                          index=recipes.index(suggested) if suggested in recipes else 0,
                          help="configs/data/<name>.yaml, prepared by `pipeline data prepare`.")
    prepared = data.prepared_dir(recipe) / "train.mindrecord"
    if prepared.is_file():
        st.caption(f"Data ready: {derive.md_code(prepared)}")
    else:
        st.caption(f"Not prepared yet: the job runs `pipeline data prepare` for {derive.md_code(recipe)} "
                   "first (seconds for tiny, minutes for default).")
    suffix = derive.digest(preset)  # fields keyed by preset, so each preset brings its own defaults
    with st.form(f"train_form_{suffix}", border=False):
        name = st.text_input("New run name", value="lora-new", key=f"train_name_{suffix}")
        c1, c2 = st.columns(2)
        rank = c1.number_input("rank", 1, 256, int(lora.get("rank") or 8), key=f"train_rank_{suffix}")
        alpha = c2.number_input("alpha", 0.5, 512.0, float(lora.get("alpha") or 16.0),
                                key=f"train_alpha_{suffix}")
        targets = st.multiselect("targets", TARGETS, key=f"train_targets_{suffix}",
                                 default=[t for t in (lora.get("targets") or ["wq", "wv"]) if t in TARGETS])
        steps = st.number_input("max steps", 1, 1_000_000, int(info.get("max_steps") or 50),
                                key=f"train_steps_{suffix}")
        submitted = st.form_submit_button("Start training")
    if not submitted:
        return
    slug = derive.safe_run_name(name)
    if not slug:
        st.error("Give the run a name (letters, digits, - and _).")
        return
    if (data.run_path(slug) / "manifest.json").exists():
        st.error(f"A run named {derive.md_code(slug)} already exists; pick another name.")
        return
    try:
        first, argv = train_plan(preset, recipe, slug, rank, alpha, targets, steps)
        jobs.start(data.run_path(slug), argv, first=first, label="train")
    except PipelineError as exc:
        st.error(str(exc))
        return
    st.rerun(scope="app")  # whole app: the poller must now run every 2 s
