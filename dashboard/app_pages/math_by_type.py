"""Math by type: baseline vs candidate per type, with intervals and exact McNemar tests."""
import streamlit as st

from dashboard import charts, compare, data, derive
from pipeline.problems import TYPES

st.title("Math by type")
base, cand = st.session_state.get("baseline"), st.session_state.get("candidate")
rule = st.session_state.get("rule", data.HEADLINE_RULE)
if not base or not cand:
    st.info("Pick a baseline and a candidate run in the sidebar.")
    st.stop()
shared = data.shared_rows(base, cand)
if shared is None:
    st.warning(f"{derive.md_code(base)} and {derive.md_code(cand)} need scored math samples "
               "(samples_math.jsonl): run Re-score.")
    st.stop()
share_text = (f"{shared['shared']:,} problems in common: {shared['base_rows']:,} rows in "
              f"{derive.md_code(base)}, {shared['cand_rows']:,} in {derive.md_code(cand)} "
              "(paired by problem text and reference, not by position)")
if not shared["shared"]:
    st.warning(f"No paired statistics: the two runs were tested on different problems ({share_text}). "
               "Pick runs on the same test set to compare them row by row.")
    st.stop()
if shared["shared"] < max(shared["base_rows"], shared["cand_rows"]):
    st.warning(f"Only {share_text}: every paired number below uses the shared rows alone.")
else:
    st.caption(share_text.capitalize() + ".")
table = data.paired_by_type(base, cand, rule)

order = [t for t in TYPES if t in set(table["type"])] + ["all"]
total = table[table["type"] == "all"].iloc[0]
c1, c2, c3, c4 = st.columns(4)
c1.metric(f"baseline ({rule})", f"{total['base_acc']:.2%}")
c2.metric(f"candidate ({rule})", f"{total['cand_acc']:.2%}", f"{total['diff']:+.2%}")
c3.metric("paired samples", f"{int(total['n']):,}",
          help=f"of {shared['base_rows']:,} baseline and {shared['cand_rows']:,} candidate rows")
c4.metric("McNemar p (all)", f"{total['p_value']:.3g}",
          help=f"{int(total['base_only'])} rows only the baseline got right, "
               f"{int(total['cand_only'])} only the candidate")
colors = charts.run_colors(data.run_ids())  # a run keeps its colour on every chart
st.altair_chart(charts.accuracy_by_type(table, base, cand, order, colors), width="stretch")
st.altair_chart(charts.paired_difference(table, order=order), width="stretch")
st.caption("Exact McNemar test on the paired verdicts (scipy binomtest over the discordant pairs): "
           "a gain is real when p is small, whatever the sample count.")
st.dataframe(
    table[["type", "n", "base_acc", "cand_acc", "diff", "base_only", "cand_only", "p_value"]],
    hide_index=True, width="stretch", placeholder=derive.MISSING,
    column_config={"base_acc": st.column_config.NumberColumn("baseline", format="percent"),
                   "cand_acc": st.column_config.NumberColumn("candidate", format="percent"),
                   "diff": st.column_config.NumberColumn("difference", format="percent"),
                   "base_only": "only baseline right", "cand_only": "only candidate right",
                   "p_value": st.column_config.NumberColumn("McNemar p", format="%.4f")})

st.subheader("By operand size and answer length")
left, right = st.columns(2)
for col, by, title, order_b in ((left, "operand_size", "operand digits", data.OPERAND_BUCKETS[1]),
                                (right, "answer_len", "answer digits", data.ANSWER_BUCKETS[1])):
    frame = derive.long_by_run({base: data.accuracy_by(base, rule, by),
                                cand: data.accuracy_by(cand, rule, by)})
    if not frame.empty:
        frame = frame[frame[by].isin(order_b)]  # answers without digits have no bucket
        col.altair_chart(charts.accuracy_by_bucket(frame, by, title, list(order_b), colors,
                                                   [base, cand]), width="stretch")

st.subheader("Which digits are right")
cells, positions, types = compare.positions_long({base: data.metrics(base), cand: data.metrics(cand)})
if cells.empty:
    st.info("No per-position accuracy in these runs' metrics.json yet: run Re-score.")
else:
    st.altair_chart(charts.position_heatmap(cells, positions, types, [base, cand]))
    st.caption("Answer and reference aligned at the decimal point: the share of rows whose "
               "digit at each place (and sign) is the reference's. Right sign and leading "
               "digits with wrong middle digits mean the magnitude is learnt and the column "
               "arithmetic is not. `python -m pipeline errors --run RUN` prints the same table.")

st.subheader("Under each grading rule")
rules = derive.rules_frame({base: data.metrics(base), cand: data.metrics(cand)})
if not rules.empty:
    st.altair_chart(charts.accuracy_by_rule(rules, list(data.RULES), colors), width="stretch")
