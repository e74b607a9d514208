"""SQuAD: F1/EM of each run against the 90% gate; per-sample losses against the baseline."""
import pandas as pd
import streamlit as st

from dashboard import charts, data, derive
from pipeline import contest

st.title("SQuAD (original ability)")
base, cand = st.session_state.get("baseline"), st.session_state.get("candidate")
metrics = {run: data.metrics(run) for run in data.run_ids()}
rows = []
for run, run_metrics in metrics.items():
    squad = (run_metrics or {}).get("squad") or {}
    mf = squad.get("mindformers")
    if mf:
        rows += [{"run": run, "metric": "F1", "value": mf["f1"]},
                 {"run": run, "metric": "EM", "value": mf["em"]}]
if not rows:
    st.info("No run has SQuAD metrics yet: infer SQuAD, then Re-score.")
    st.stop()

base_squad = ((data.metrics(base) or {}).get("squad") or {}).get("mindformers") if base else None
if base_squad:
    thresholds = {"F1": base_squad["f1"] * contest.RETENTION, "EM": base_squad["em"] * contest.RETENTION}
    st.caption(f"Gate: {contest.RETENTION:.0%} of baseline {derive.md_code(base)} "
               f"(F1 {base_squad['f1']:.2f}, EM {base_squad['em']:.2f}); MindFormers EmF1Metric.")
    if contest.em_gate_vacuous({"em_threshold": thresholds["EM"]}):
        st.warning(f"EM gate: {contest.EM_VACUOUS_NOTE}.")
else:
    thresholds = {"F1": contest.SQUAD_F1_THRESHOLD, "EM": contest.SQUAD_EM_THRESHOLD}
    st.caption(f"Gate: {contest.RETENTION:.0%} of the contest's base Llama3-8B "
               f"(F1 {contest.BASE_SQUAD_F1:.2f}, EM {contest.BASE_SQUAD_EM:.2f}).")
st.altair_chart(charts.squad_scores(pd.DataFrame(rows), thresholds))

# The gate is MindFormers' metric; the official SQuAD script can tell another story (answers
# that start with '=' keep MindFormers' F1 and lose the official one), so both are shown.
both = pd.DataFrame(derive.squad_metric_rows(metrics, {r: data.manifest(r).get("kind") for r in metrics}))
if not both.empty:
    st.caption("Both metrics per run: MindFormers' EmF1Metric (the contest's gate) and the "
               "official SQuAD v1.1 script (word-level after normalising). A large gap means "
               "the answers' form changed, not only their content: MindFormers' metric counts "
               "a shared space as a matching token, so short junk answers keep some F1.")
    st.table(both.set_index("run"))

if not cand:
    st.stop()
st.subheader(f"Per sample: {derive.md_code(cand)} vs {derive.md_code(base)}")
pair = data.squad_pair(cand, base) if base else None
if pair is None:
    st.info(f"{derive.md_code(cand)} has no samples_squad.jsonl.")
    st.stop()
lost = int((pair.get("f1_loss", pd.Series(dtype=float)) > 0).sum())
st.caption(f"{len(pair):,} questions, largest F1 loss from the baseline first; "
           f"{lost:,} lost F1.")
shown = pair.head(500).copy()
for col in ("question", "gold", "prediction", "base_prediction"):  # '—', never 'None'
    if col in shown:
        shown[col] = shown[col].map(derive.text_or_dash)
st.dataframe(shown, hide_index=True, width="stretch", placeholder=derive.MISSING,
             column_config={"mf_f1": st.column_config.NumberColumn("F1", format="%.1f"),
                            "mf_em": st.column_config.NumberColumn("EM", format="%.0f"),
                            "base_f1": st.column_config.NumberColumn("base F1", format="%.1f"),
                            "base_em": st.column_config.NumberColumn("base EM", format="%.0f"),
                            "f1_loss": st.column_config.NumberColumn("F1 loss", format="%.1f")})
