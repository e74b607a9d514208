"""Import: bring an NPU run (predictions .npy + test file + logs) into results/ via the importer."""
from pathlib import Path

import streamlit as st

from dashboard import data, derive
from pipeline import jobs
from pipeline.errors import PipelineError

st.title("Import an NPU run")
st.caption("The prediction file is read only with the restricted unpickler (pipeline.npy): "
           "a pickle that names anything but numpy's array machinery is refused, never run.")
name = derive.safe_run_name(st.text_input("New run name", value="npu-import", key="imp_name"))
mode = st.radio("Files", ["Upload", "Paths on this machine"], horizontal=True, key="imp_mode")
FIELDS = (("predictions", "Predictions (.npy)", ["npy"]), ("tests", "Test file (.jsonl/.json)", ["jsonl", "json"]),
          ("train_log", "Training log (optional)", ["log", "txt"]), ("eval_log", "SQuAD eval log (optional)", ["log", "txt"]))
paths: dict[str, Path | None] = {}
for field, label, types in FIELDS:
    if mode == "Upload":
        upload = st.file_uploader(label, type=types, key=f"imp_up_{field}")
        paths[field] = data.stage_upload(name, upload.name, upload.getvalue()) if upload and name else None
    else:
        text = st.text_input(label, key=f"imp_path_{field}").strip()
        paths[field] = Path(text).expanduser() if text else None

ready = bool(name and paths["predictions"] and paths["tests"])
try:
    if paths["predictions"]:
        pred = data.preview_predictions(paths["predictions"])
        st.success(f"{pred['count']:,} predictions read safely.")
        st.code("\n---\n".join(t[-300:] for t in pred["head"]), language=None)
    if paths["tests"]:
        tests = data.preview_tests(paths["tests"])
        st.success(f"{tests['count']:,} test rows.")
        if paths["predictions"] and tests["count"] != pred["count"]:
            st.warning(f"{pred['count']:,} predictions but {tests['count']:,} test rows.")
except PipelineError as exc:
    st.error(str(exc))
    ready = False

target = data.results_dir() / name if name else None
busy = bool(target and jobs.is_alive(target))
exists = bool(target and (target / "manifest.json").exists())
if exists:
    st.warning(f"A run named `{name}` already exists; pick another name.")
if st.button("Import", type="primary", disabled=not ready or busy or exists, key="imp_go"):
    try:
        jobs.start(target, jobs.import_argv(name, paths["predictions"], paths["tests"],
                                            paths["train_log"], paths["eval_log"]))
        st.success(f"Import started into `{name}`: follow it under Jobs in the sidebar.")
        st.rerun()
    except PipelineError as exc:
        st.error(str(exc))
