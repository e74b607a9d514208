"""Overview: every run in one sortable table, scored under the selected rule."""
import streamlit as st

from dashboard import data, derive
from pipeline import contest

st.title("Runs")
rule = st.session_state.get("rule", data.HEADLINE_RULE)
summaries = data.run_summaries()
if not summaries:
    st.info(f"No runs in {derive.md_code(data.results_dir())} yet. Train, infer and evaluate one, or use Import.")
    st.stop()

board = data.leaderboard()
table = derive.overview_table(summaries, rule, board["score"].tolist())
st.caption(f"Math accuracy and score under the **{rule}** rule (change it in the sidebar). "
           f"SQuAD gate: F1 and EM ≥ {contest.RETENTION:.0%} of the baseline's; \"{derive.GATE_F1_ONLY.strip()}\" "
           f"where {contest.EM_VACUOUS_NOTE}. Rank: where the score "
           f"would place among the {len(board)} published phase-1 teams. Click a header to sort.")
st.dataframe(
    table, hide_index=True, width="stretch", key="overview_table", placeholder=derive.MISSING,
    column_config={
        "run": st.column_config.TextColumn("run", pinned=True),
        "trainable_ratio": st.column_config.NumberColumn("trainable ratio", format="%.3e"),
        "math_acc": st.column_config.NumberColumn(f"math acc ({rule})", format="%.2f%%"),
        "math_n": st.column_config.NumberColumn("math n", format="%d"),
        "squad_f1": st.column_config.NumberColumn("SQuAD F1", format="%.2f"),
        "squad_em": st.column_config.NumberColumn("SQuAD EM", format="%.2f"),
        "gate": st.column_config.TextColumn("SQuAD gate"),
        "score": st.column_config.NumberColumn("contest score", format="%.4f"),
        "rank": st.column_config.NumberColumn("rank /20", format="%d"),
    })

base, cand = st.session_state.get("baseline"), st.session_state.get("candidate")
st.subheader("Comparison")
st.caption("Pick the baseline and candidate in the sidebar; every page uses them.")
cols = st.columns(2)
for col, label, run in ((cols[0], "Baseline", base), (cols[1], "Candidate", cand)):
    row = table[table["run"] == run]
    if row.empty:
        continue
    r = row.iloc[0]
    with col.container(border=True):
        st.markdown(f"**{label}:** {derive.md_code(run)} · {derive.md_text(r['model'])} · "
                    f"adapter {derive.md_text(r['adapter'])}")
        reused = derive.reused_note(data.manifest(run))
        if reused:
            st.caption(derive.md_text(reused) + " (the same model, tests, settings, batch size, "
                       "decoder and versions: `infer --reuse`), not decoded again.")
        m1, m2, m3 = st.columns(3)
        m1.metric("math accuracy", derive.fmt(r["math_acc"], ".2f", "%"))
        m2.metric("contest score", derive.fmt(r["score"]))
        if r["gate"] == derive.GATE_REFERENCE:  # the long label would be cut in a metric card
            m3.metric("SQuAD gate", "—", help="A baseline is the reference its fine-tunes are gated against.")
        else:
            m3.metric("SQuAD gate", derive.text_or_dash(r["gate"]),
                      help=None if r["gate"] != "—" else "No SQuAD scores for this run (or its baseline).")
