"""Score: the contest score, our runs beside the 20 real teams, and a what-if calculator."""
import pandas as pd
import streamlit as st

from dashboard import charts, data, derive

st.title("Contest score")
rule = st.session_state.get("rule", data.HEADLINE_RULE)
board = data.leaderboard()
scores = board["score"].tolist()
ours = derive.overview_table(data.run_summaries(), rule, scores)
cand = st.session_state.get("candidate")
row = ours[ours["run"] == cand]
if not row.empty:
    r = row.iloc[0]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(f"{derive.md_code(cand)} score", derive.fmt(r["score"]))
    c2.metric("rank among 20 teams", derive.fmt(r["rank"], ".0f"))
    c3.metric(f"accuracy ({rule})", derive.fmt(r["math_acc"], ".2f", "%"))
    c4.metric("trainable ratio", derive.fmt(r["trainable_ratio"], ".3e"))
    st.caption("score = (1 − ratio) × 0.3 + accuracy × 0.7 (phase 1). Our ratio is against our "
               "model's total parameters.")

points = pd.concat([
    pd.DataFrame({"name": board["team"], "source": "leaderboard", "ratio": board["ratio"],
                  "accuracy": board["accuracy"], "score": board["score"]}),
    pd.DataFrame({"name": ours["run"], "source": "ours", "ratio": ours["trainable_ratio"],
                  "accuracy": ours["math_acc"] / 100.0, "score": ours["score"]}),
], ignore_index=True).dropna(subset=["ratio", "accuracy"])
points = points[points["ratio"] > 0]
points["front"] = derive.pareto_front(points)
st.altair_chart(charts.pareto(points), width="stretch")

st.subheader("What if: LoRA on Llama3-8B")
c1, c2, c3 = st.columns([1, 2, 2])
rank = c1.number_input("rank", 1, 1024, 8, key="wi_rank")
targets = c2.multiselect("target modules", list(derive.LORA_TARGETS),
                         default=["wq", "wv"], key="wi_targets")
acc = c3.slider("math accuracy", 0.0, 1.0, 0.65, 0.005, format="%.3f", key="wi_acc")
if targets:
    res = derive.what_if(int(rank), targets, acc, scores)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("trainable params", f"{res['params']:,}")
    m2.metric("ratio", f"{res['ratio']:.4e}")
    m3.metric("score", f"{res['score']:.4f}")
    m4.metric("rank among 20", res["rank"])
else:
    st.info("Pick at least one target module.")
with st.expander("The 20 phase-1 teams"):
    st.dataframe(board[["rank", "team", "accuracy", "ratio", "score", "lora"]], hide_index=True,
                 width="stretch", placeholder=derive.MISSING)
