"""Training: loss (raw and smoothed), learning rate and step time of several runs, overlaid."""
import streamlit as st

from dashboard import charts, data, derive
from pipeline.checkpoint_curve import best_point
from pipeline.errors import PipelineError


def _show_choice(run: str, choice: dict) -> None:
    """The checkpoint chosen for submission: held-out SQuAD per candidate against the base."""
    base = choice["base_squad"]["mindformers"]["f1"]
    # the heading outside the chart: a Vega title here was clipped under the caption above
    st.markdown(f"**{derive.md_text(run)}: held-out SQuAD F1 of the candidate checkpoints** "
                f"({choice['base_squad'].get('items')} items never scored, the base model on "
                "the same items)")
    st.altair_chart(charts.heldout_squad_by_step(
        derive.heldout_squad_long(choice), base, base * choice["keep"],
        base * choice["contest_fraction"], choice["step"]), width="stretch")
    verdict = "" if choice["passes"] else " ⚠️ It keeps less than the choice asks: expect a gate failure."
    used = {task: ((entry.get("settings") or {}).get("adapter"))
            for task, entry in (data.manifest(run).get("inference") or {}).items()}
    stale = [task for task, adapter in used.items() if adapter != choice["adapter"]]
    decoded = (f" ⚠️ The run's {' and '.join(stale)} predictions were decoded with another "
               "adapter: infer again to score the chosen one." if stale else
               " The run's predictions were decoded with it." if used else "")
    st.markdown(f"**Chosen for submission: step {choice['step']}** (adapter "
                f"{derive.md_code(choice['adapter'])}): {derive.md_text(choice['reason'])}."
                f"{decoded}{verdict}")

st.title("Training")
with_logs = [r for r in data.run_ids() if data.has_train_log(r)]
if not with_logs:
    st.info("No run has a train.log yet: train one from the sidebar, or import an NPU log.")
    st.stop()
preferred = [r for r in (st.session_state.get("candidate"), st.session_state.get("baseline"))
             if r in with_logs]
c1, c2, c3 = st.columns([3, 1, 1])
chosen = c1.multiselect("Runs", with_logs, default=preferred or with_logs[:2], key="train_runs")
weight = c2.slider("Smoothing", 0.0, 0.99, 0.8, 0.01, key="train_smooth")
hide = c3.checkbox("Hide compile steps", value=True, key="train_hide",
                   help="The first step of each session includes graph compilation.")
frames, warnings = {}, []
for run in chosen:
    frame, warns = data.training(run)
    frames[run] = frame
    warnings += [f"{derive.md_code(run)}: {derive.md_text(w)}" for w in warns]
curves, epochs = derive.training_long(frames, weight, hide)
for w in warnings:
    st.caption(f"⚠️ {w}")
if curves.empty:
    st.warning("No loss lines found in the selected logs.")
    st.stop()

left, right = st.columns(2)
left.altair_chart(charts.training_curve(curves, "global_step", "loss", "global step", "loss",
                                        smooth="loss_smooth", epochs=epochs), width="stretch")
right.altair_chart(charts.training_curve(curves, "wall_min", "loss", "wall time (min)", "loss",
                                         smooth="loss_smooth", epochs=epochs), width="stretch")
left, right = st.columns(2)
left.altair_chart(charts.training_curve(curves, "global_step", "lr", "global step", "learning rate",
                                        epochs=epochs), width="stretch")
right.altair_chart(charts.training_curve(curves, "global_step", "per_step_time_ms", "global step",
                                         "step time (ms)", epochs=epochs), width="stretch")
summary = curves.groupby("run").agg(steps=("global_step", "max"), final_loss=("loss", "last"),
                                    minutes=("wall_min", "max"))
st.dataframe(summary, width="stretch", placeholder=derive.MISSING,
             column_config={"minutes": st.column_config.NumberColumn("minutes", format="%.1f"),
                            "final_loss": st.column_config.NumberColumn("final loss", format="%.3f")})

# Accuracy against step: which checkpoint to submit, and where training stopped paying.
with_curve = [r for r in chosen if data.checkpoint_curve(r)]
st.subheader("Accuracy against training step")
if not with_curve:
    st.caption("No selected run has `checkpoints_math.json` yet: `python -m pipeline "
               "eval-checkpoints --run RUN --tests data/prepared/default/validation.jsonl` "
               "scores its kept adapters (or start it from the sidebar).")
    st.stop()
for run in with_curve:
    points = data.checkpoint_curve(run)
    best = best_point(points)
    try:
        choice = data.checkpoint_choice(run)
    except PipelineError as exc:
        choice = None
        st.warning(f"{derive.md_code(run)}: {derive.md_text(str(exc))}")
    rows = points[-1].get("rows")
    st.altair_chart(charts.accuracy_by_step(
        derive.checkpoint_long(points), best and best["step"],
        title=f"{run}: {len(points)} checkpoints, {rows} rows, {points[-1].get('headline_rule')} rule",
        chosen_step=choice and choice["step"]), width="stretch")
    if best:
        st.caption(f"Best checkpoint of `{run}`: step {best['step']} "
                   f"({best['rules'][best['headline_rule']]:.1%}, adapter `{best['adapter']}`). "
                   "Choose it on validation rows, not on the test.")
    if choice:
        _show_choice(run, choice)
