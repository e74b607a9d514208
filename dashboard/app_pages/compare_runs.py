"""Compare: N runs side by side (settings, results, charts) and a report to download."""
import streamlit as st

from dashboard import charts, compare, data, derive

st.title("Compare runs")
rule = st.session_state.get("rule", data.HEADLINE_RULE)
everything = data.run_ids()
if not everything:
    st.info(f"No runs in `{data.results_dir()}` yet.")
    st.stop()
# ?runs=a,b,c opens a comparison from a link; else the sidebar's baseline and candidate
linked = [r for r in st.query_params.get("runs", "").split(",") if r in everything]
default = linked or [r for r in (st.session_state.get("baseline"),
                                 st.session_state.get("candidate")) if r]
picked = st.multiselect("Runs (the first is the reference of the report's paired tests)",
                        everything, default=list(dict.fromkeys(default)) or everything[:2],
                        key="compare_runs")
if not picked:
    st.info("Pick one or more runs.")
    st.stop()

loaded = {run: {"manifest": data.manifest(run), "metrics": data.metrics(run),
                "training": compare.training_from_loss(data.training(run)[0])} for run in picked}
rows = compare.compare_rows(loaded, rule)
colors = charts.run_colors(everything)  # a run keeps its colour whatever else is picked

st.caption(f"Settings from each run's manifest (a training log fills in what an imported run "
           f"lacks); results under the **{rule}** rule (change it in the sidebar).")
type_cols = {c: st.column_config.NumberColumn(c[4:], format="%.1f%%")
             for c in rows.columns if c.startswith("acc_")}
st.dataframe(rows, hide_index=True, width="stretch", key="compare_table", placeholder=derive.MISSING, column_config={
    "run": st.column_config.TextColumn("run", pinned=True),
    "lora_rank": st.column_config.NumberColumn("rank", format="%d"),
    "lora_alpha": st.column_config.NumberColumn("alpha", format="%g"),
    "lr": st.column_config.NumberColumn("lr", format="%.2e"),
    "steps": st.column_config.NumberColumn("steps", format="%d"),
    "minutes": st.column_config.NumberColumn("train min", format="%.1f"),
    "math_acc": st.column_config.NumberColumn(f"math ({rule})", format="%.2f%%"),
    "squad_f1": st.column_config.NumberColumn("SQuAD F1", format="%.2f"),
    "squad_em": st.column_config.NumberColumn("SQuAD EM", format="%.2f"),
    "trainable_ratio": st.column_config.NumberColumn("trainable ratio", format="%.3e"),
    "score": st.column_config.NumberColumn("score", format="%.4f"),
    "leaderboard_rank": st.column_config.NumberColumn("rank /20", format="%d"),
    **type_cols})

points = compare.scatter_points(rows)
left, right = st.columns([2, 3])
if not points[points["ratio"] > 0].empty:
    left.altair_chart(charts.accuracy_ratio_minutes(points, colors), width="stretch")
    left.caption("Runs that train nothing (ratio 0) have no place on a log axis.")
per_type = compare.per_type_long({run: loaded[run]["metrics"] for run in picked}, rule)
if not per_type.empty:
    order = list(dict.fromkeys(per_type["type"]))
    right.altair_chart(charts.accuracy_by_type_runs(per_type, order, colors, picked),
                      width="stretch")

st.subheader("Report to share")
st.caption("A Markdown file with these tables, per-type Wilson intervals and exact McNemar p "
           "against the first run, error classes, and the charts as PNG (zip). The same as "
           f"`python -m pipeline report --runs {' '.join(picked)} --rule {rule} --out report.md`.")


def _report_zip() -> bytes:
    from pipeline.report import report_zip
    return report_zip(picked, data.results_dir(), rule)


st.download_button("Download report (.zip)", data=_report_zip, file_name="report.zip",
                   mime="application/zip", on_click="ignore", key="compare_report")
