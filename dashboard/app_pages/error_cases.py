"""Error cases: filter the candidate's samples, read one, export the selection as CSV."""
import streamlit as st

from dashboard import data, derive
from pipeline.scoring.errors import ERROR_CLASSES as CLASSES

PAGE_ROWS = 100
ERROR_CLASSES = [*CLASSES, "correct"]  # pipeline.scoring.errors' registry, docs/error_classes.md

st.title("Error cases")
base, cand = st.session_state.get("baseline"), st.session_state.get("candidate")
rule = st.session_state.get("rule", data.HEADLINE_RULE)
frame = data.error_rows(cand, base if base != cand else None) if cand else None
if frame is None:
    st.info("The candidate run has no scored math samples yet (samples_math.jsonl): run Re-score.")
    st.stop()
classes = data.error_classes(cand, rule)  # under the rule picked, not only the headline one
if classes is not None and "index" in frame:
    frame = frame.assign(error_class=classes[frame["index"].to_numpy(dtype=int)])

c1, c2, c3 = st.columns([2, 1, 2])
types = c1.multiselect("Type", sorted(frame["type"].unique()), key="err_types")
pair = c3.selectbox(f"Against baseline {derive.md_code(base)}", derive.PAIR_FILTERS, key="err_pair")
if pair == derive.PAIR_FILTERS[0]:
    verdict = c2.selectbox(f"Verdict ({rule})", ["wrong", "right", "any"], key="err_verdict")
else:  # the pair filter fixes the candidate's verdict; a second one could only contradict it
    verdict = "any"
    c2.selectbox(f"Verdict ({rule})", [derive.implied_verdict(pair)], disabled=True,
                 key="err_verdict_implied", help="Set by the baseline filter.")
c4, c5 = st.columns([2, 3])
classes = c4.multiselect("Error class", ERROR_CLASSES, key="err_classes")
text = c5.text_input("Search problem / output / answer", key="err_text")
rows = derive.filter_errors(frame, rule, types, verdict, pair, classes, text)
if pair != derive.PAIR_FILTERS[0] and f"base_ok_{rule}" in frame:
    known = int(frame[f"base_ok_{rule}"].notna().sum())
    if known < len(frame):  # rows are matched by problem: the rest have no baseline verdict
        st.caption(f"The baseline answered {known:,} of these {len(frame):,} problems; "
                   "the other rows cannot be compared and are left out.")

n = len(rows)
pages = max(1, -(-n // PAGE_ROWS))
h1, h2, h3 = st.columns([3, 1, 1])
h1.markdown(f"**{n:,}** of {len(frame):,} samples of {derive.md_code(cand)} match.")
page = h2.number_input("page", 1, pages, 1, key="err_page") if pages > 1 else 1
export_cols = ["id", "type", "problem", "reference", "extracted", "output", "error_class",
               *[c for c in rows.columns if c.startswith(("ok_", "base_ok_"))]]
h3.download_button("Export CSV", data=lambda: rows[export_cols].to_csv(index=False).encode("utf-8"),
                   file_name=f"{cand}_errors.csv", mime="text/csv", on_click="ignore",
                   disabled=n == 0)

shown = rows.iloc[(page - 1) * PAGE_ROWS: page * PAGE_ROWS]
view = shown[["id", "type", "problem", "reference", "extracted", "error_class"]].copy()
for col in ("problem", "reference", "extracted"):  # '—', never 'None'
    view[col] = view[col].map(derive.text_or_dash)
view["error_class"] = view["error_class"].fillna("correct")  # as the class filter calls it
view["output (answer in 【】)"] = [derive.mark_answer(o, a) for o, a in
                                  zip(shown["output"], shown["extracted"])]
view[f"ok ({rule})"] = shown[f"ok_{rule}"]
if f"base_ok_{rule}" in shown:
    view[f"baseline ok ({rule})"] = shown[f"base_ok_{rule}"]
# Keyed on the filters and page: a new filter gives a table with no stale selection, so the
# detail below never shows a row picked from another filter (or one that no longer exists).
table_key = "err_table_" + derive.digest((rule, types, verdict, pair, classes, text, page, base))
event = st.dataframe(view, hide_index=True, width="stretch", key=table_key, placeholder=derive.MISSING,
                     on_select="rerun", selection_mode="single-row")

picked = event.selection.rows if event and event.selection else []
sample = derive.picked_row(shown, picked)
if sample is not None:
    with st.container(border=True):
        st.html(derive.sample_html(sample))  # untrusted text: escaped HTML, never Markdown
else:
    st.caption("Select a row to read its full output with the extracted answer highlighted.")
