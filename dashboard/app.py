"""Dashboard router: `streamlit run dashboard/app.py` (results from $PIPELINE_RESULTS or results/).

Pages live in dashboard/app_pages/; the sidebar (run selection, rerun jobs) is
drawn here so its state is kept across pages.
"""
from pathlib import Path

import streamlit as st

from dashboard import sidebar
from pipeline.errors import PipelineError

PAGES = Path(__file__).resolve().parent / "app_pages"

st.set_page_config(page_title="LoRA workbench", page_icon=":material/calculate:", layout="wide")
nav = st.navigation([
    st.Page(PAGES / "overview.py", title="Overview", icon=":material/table_chart:", url_path="overview", default=True),
    st.Page(PAGES / "math_by_type.py", title="Math by type", icon=":material/bar_chart:", url_path="math"),
    st.Page(PAGES / "error_cases.py", title="Error cases", icon=":material/search:", url_path="errors"),
    st.Page(PAGES / "squad.py", title="SQuAD", icon=":material/menu_book:", url_path="squad"),
    st.Page(PAGES / "training.py", title="Training", icon=":material/show_chart:", url_path="training"),
    st.Page(PAGES / "score.py", title="Score", icon=":material/emoji_events:", url_path="score"),
    st.Page(PAGES / "compare_runs.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page(PAGES / "import_run.py", title="Import", icon=":material/upload_file:", url_path="import"),
])
sidebar.selectors()
sidebar.jobs_panel()
try:
    nav.run()
except PipelineError as exc:  # a corrupt file of the selected runs: say which, keep the app up
    st.error(f"Cannot show this page: {exc}", icon="🚨")
