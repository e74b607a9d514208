"""Import: bring an NPU run (math and/or SQuAD predictions, test rows, logs) into results/."""
from pathlib import Path

import streamlit as st

from dashboard import data, derive, uploads
from pipeline import jobs
from pipeline.errors import PipelineError

CONTEST_BASE = "(contest base Llama3-8B: F1 59.87, EM 44.17)"
# (field, label, upload types, what the file is, in one line)
FIELDS = (
    ("predictions", "Math predictions (.npy)", ["npy"],
     "The contest's result .npy for the math test set: one prediction per test row."),
    ("tests", "Math test rows (.jsonl)", ["jsonl", "json"],
     "JSON Lines, one {\"problem\", \"solution\"} object per line, in prediction order."),
    ("squad_predictions", "SQuAD predictions (.npy)", ["npy"],
     "The .npy of MindFormers' SQuAD eval: row i answers item i of the 2,067-item contest set."),
    ("squad", "SQuAD eval set (optional)", ["json", "jsonl"],
     "dev-v1.1.json or tests_squad.jsonl rows; left empty: the project's data/squad/dev-v1.1.json."),
    ("train_log", "Training log (optional)", ["log", "txt"],
     "MindFormers training log: its 'Network Parameters' line gives the trainable count."),
    ("eval_log", "SQuAD eval log (optional)", ["log", "txt"],
     "MindFormers SQuAD eval log: its F1/EM are used when there are no SQuAD predictions."),
)

st.title("Import an NPU run")
st.caption("Prediction files are read only with the restricted unpickler (pipeline.npy): "
           "a pickle that names anything but numpy's array machinery is refused, never run.")
removed = uploads.sweep_uploads()
if removed:
    st.caption(f"Removed {len(removed)} staged upload folder(s) of finished or abandoned "
               f"imports: {', '.join(removed)}.")
name = derive.safe_run_name(st.text_input("New run name", value="npu-import", key="imp_name"))
target = data.results_dir() / name if name else None
busy = bool(target and jobs.is_alive(target))
exists = bool(target and (target / "manifest.json").exists())
if exists and not busy:
    st.warning(f"A run named `{name}` already exists; pick another name.")
mode = st.radio("Files", ["Upload", "Paths on this machine"], horizontal=True, key="imp_mode")

paths: dict[str, Path | None] = {}
for field, label, types, what in FIELDS:
    if mode == "Upload":
        upload = st.file_uploader(label, type=types, key=f"imp_up_{field}")
        # nothing is staged for a name already taken: that import is done or refused
        staged = upload and name and not exists
        paths[field] = uploads.stage_upload(name, field, upload.name, upload.getvalue()) if staged else None
    else:
        text = st.text_input(label, key=f"imp_path_{field}").strip()
        paths[field] = Path(text).expanduser() if text else None
    st.caption(what)

partial = st.checkbox("The SQuAD eval was cut short: score its predictions against the first "
                      "items", key="imp_partial")
base_choice = st.selectbox("Gate SQuAD against", [CONTEST_BASE] + data.squad_run_ids(),
                           key="imp_baseline")
baseline = None if base_choice == CONTEST_BASE else str(data.run_path(base_choice))

ready = False
if not any(paths[f] for f in ("predictions", "tests", "squad_predictions", "eval_log")):
    st.info("Give the math predictions with their test rows, the SQuAD predictions, or both.")
elif not exists:
    try:
        info = uploads.check_import(partial=partial, **paths)
    except PipelineError as exc:
        st.error(str(exc))
    else:
        if info["math"]:
            m = info["math"]
            st.success(f"Math: {m['predictions']:,} predictions read safely, one per test row "
                       f"({m['rows']:,}).")
            st.code("\n---\n".join(t[-300:] for t in m["head"]), language=None)
        if info["squad"]:
            s = info["squad"]
            st.success(f"SQuAD: {s['predictions']:,} predictions read safely for {s['rows']:,} "
                       "eval items.")
            st.code("\n---\n".join(t[-300:] for t in s["head"]), language=None)
        for warning in info["warnings"]:
            st.warning(warning)
        ready = bool(name)

if st.button("Import", type="primary", disabled=not ready or busy or exists, key="imp_go"):
    try:
        jobs.start(target, jobs.import_argv(
            name, paths["predictions"], paths["tests"], paths["train_log"], paths["eval_log"],
            squad_predictions=paths["squad_predictions"], squad=paths["squad"], baseline=baseline,
            partial=partial))
        st.success(f"Import started into `{name}`: follow it under Jobs in the sidebar.")
        st.rerun()
    except PipelineError as exc:
        st.error(str(exc))
