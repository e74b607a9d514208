"""Error cases: filter the candidate's samples, read one, export the selection as CSV."""
import streamlit as st

from dashboard import data, derive

PAGE_ROWS = 100
ERROR_CLASSES = ["wrong_sign", "rounding", "magnitude", "transposed", "no_number", "echo", "other",
                 "correct"]

st.title("Error cases")
base, cand = st.session_state.get("baseline"), st.session_state.get("candidate")
rule = st.session_state.get("rule", data.HEADLINE_RULE)
frame = data.error_rows(cand, base if base != cand else None) if cand else None
if frame is None:
    st.info("The candidate run has no scored math samples yet (samples_math.jsonl): run Re-score.")
    st.stop()

c1, c2, c3 = st.columns([2, 1, 2])
types = c1.multiselect("Type", sorted(frame["type"].unique()), key="err_types")
verdict = c2.selectbox(f"Verdict ({rule})", ["wrong", "right", "any"], key="err_verdict")
pair = c3.selectbox(f"Against baseline `{base}`", derive.PAIR_FILTERS, key="err_pair")
c4, c5 = st.columns([2, 3])
classes = c4.multiselect("Error class", ERROR_CLASSES, key="err_classes")
text = c5.text_input("Search problem / output / answer", key="err_text")
rows = derive.filter_errors(frame, rule, types, verdict, pair, classes, text)

n = len(rows)
pages = max(1, -(-n // PAGE_ROWS))
h1, h2, h3 = st.columns([3, 1, 1])
h1.markdown(f"**{n:,}** of {len(frame):,} samples of `{cand}` match.")
page = h2.number_input("page", 1, pages, 1, key="err_page") if pages > 1 else 1
export_cols = ["id", "type", "problem", "reference", "extracted", "output", "error_class",
               *[c for c in rows.columns if c.startswith(("ok_", "base_ok_"))]]
h3.download_button("Export CSV", data=lambda: rows[export_cols].to_csv(index=False).encode("utf-8"),
                   file_name=f"{cand}_errors.csv", mime="text/csv", on_click="ignore",
                   disabled=n == 0)

shown = rows.iloc[(page - 1) * PAGE_ROWS: page * PAGE_ROWS]
view = shown[["id", "type", "problem", "reference", "extracted", "error_class"]].copy()
view["output (answer in 【】)"] = [derive.mark_answer(o, a) for o, a in
                                  zip(shown["output"], shown["extracted"])]
view[f"ok ({rule})"] = shown[f"ok_{rule}"]
if f"base_ok_{rule}" in shown:
    view[f"baseline ok ({rule})"] = shown[f"base_ok_{rule}"]
event = st.dataframe(view, hide_index=True, width="stretch", key="err_table",
                     on_select="rerun", selection_mode="single-row")

picked = event.selection.rows if event and event.selection else []
if picked:
    sample = shown.iloc[picked[0]]
    with st.container(border=True):
        st.markdown(f"**{sample['id']}** · {sample['type']} · error class "
                    f"`{derive.as_text(sample['error_class']) or 'correct'}`")
        st.markdown(f"**Problem:** {sample['problem']}  \n**Reference:** `{sample['reference']}` · "
                    f"**Extracted:** `{derive.as_text(sample['extracted']) or '(none)'}`")
        st.markdown(f"<pre style='white-space:pre-wrap'>{derive.highlight_html(sample['output'], sample['extracted'])}</pre>",
                    unsafe_allow_html=True)
else:
    st.caption("Select a row to read its full output with the extracted answer highlighted.")
