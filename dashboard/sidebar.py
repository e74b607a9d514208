"""The sidebar on every page: run selection (kept across pages) and the rerun jobs.

Selections live in st.session_state under "baseline", "candidate" and "rule";
the widgets are drawn on every page by app.py, so their state survives page
switches. Jobs are pipeline.jobs background processes; a fragment polls them
every 2 s only while one lives, and reruns the whole app when it ends so the
pages pick up the new metrics (their loaders are keyed on file mtime).
"""
from __future__ import annotations

import streamlit as st

from dashboard import data, derive
from pipeline import jobs
from pipeline.errors import PipelineError

TARGETS = list(derive.LORA_TARGETS)


def _default(ids: list[str], kind: str, last: bool) -> str:
    matching = [r for r in ids if data.manifest(r).get("kind") == kind]
    pool = matching or ids
    return pool[-1] if last else pool[0]


def selectors() -> None:
    """Baseline, candidate and headline-rule pickers; sets session_state keys."""
    ids = data.run_ids()
    st.sidebar.caption(f"results: `{data.results_dir()}`")
    if not ids:
        st.sidebar.warning("No runs yet: a run folder needs a manifest.json.")
        return
    state = st.session_state
    if state.get("baseline") not in ids:
        state["baseline"] = _default(ids, "baseline", last=False)
    if state.get("candidate") not in ids:
        kinds = {r: data.manifest(r).get("kind") for r in ids}
        preferred = [r for r in ids if kinds[r] == "finetuned"] or \
            [r for r in ids if kinds[r] != "baseline"] or ids
        state["candidate"] = preferred[0]
    state.setdefault("rule", data.HEADLINE_RULE)
    st.sidebar.selectbox("Baseline run", ids, key="baseline")
    st.sidebar.selectbox("Candidate run", ids, key="candidate")
    st.sidebar.selectbox("Grading rule (headline)", list(data.RULES), key="rule",
                         help="exact (the contest's rule, the default): the extracted answer's "
                              "value equals the reference. Lenient views: contains: the reference "
                              "appears in the output; rounded: equal at the fewer decimals of the "
                              "two; tolerance: within 0.01.")


def _start(run_dir, argv) -> None:
    try:
        jobs.start(run_dir, argv)
    except PipelineError as exc:
        st.session_state["job_error"] = str(exc)
    st.rerun()  # whole app: the poller must now run every 2 s


def _show_job(name: str, state: dict) -> None:
    job = state["job"]
    icon = {"running": "⏳", "done": "✅", "failed": "❌"}.get(job.get("status"), "•")
    st.markdown(f"{icon} **{name}**: {job.get('status')}  \n`{job.get('command', '')[-90:]}`")
    progress = state.get("progress")
    if state["alive"] and progress and progress.get("total"):
        frac = min(1.0, progress["done"] / progress["total"])
        eta = progress.get("eta_s")
        st.progress(frac, text=f"{progress.get('stage')}: {progress['done']}/{progress['total']}"
                               + (f", ETA {eta:.0f}s" if eta is not None else ""))
    if job.get("status") == "failed":
        st.error(job.get("error") or "failed", icon="🚨")
    if state.get("log"):
        st.code(state["log"][-3000:], language=None)


def _jobs_fragment() -> None:
    cand = st.session_state.get("candidate")
    alive_now = {name for name, job in data.all_jobs() if job.get("status") == "running"}
    if st.session_state.get("job_error"):
        st.error(st.session_state.pop("job_error"))
    if cand:
        run_dir = data.run_path(cand)
        busy = jobs.is_alive(run_dir)
        st.markdown(f"**Rerun `{cand}`**")
        if st.button("Re-score", disabled=busy, key="job_eval", width="stretch",
                     icon=":material/calculate:", help="python -m pipeline evaluate: no new inference"):
            base = st.session_state.get("baseline")
            _start(run_dir, jobs.evaluate_argv(run_dir, data.run_path(base) if base and base != cand
                                               else None))
        if st.button("Re-infer math", disabled=busy, key="job_math", width="stretch",
                     icon=":material/functions:"):
            _start(run_dir, jobs.infer_argv(run_dir, "math"))
        if st.button("Re-infer SQuAD", disabled=busy, key="job_squad", width="stretch",
                     icon=":material/menu_book:"):
            _start(run_dir, jobs.infer_argv(run_dir, "squad"))
        if busy and st.button("Stop job", key="job_stop"):
            jobs.stop(run_dir)
    with st.expander("Train a new adapter", expanded=False):
        presets = data.preset_configs()
        with st.form("train_form", border=False):
            preset = st.selectbox("Preset", presets or ["configs/smollm2_135m_lora_cpu.yaml"])
            name = st.text_input("New run name", value="lora-new")
            c1, c2 = st.columns(2)
            rank = c1.number_input("rank", 1, 256, 8)
            alpha = c2.number_input("alpha", 0.5, 512.0, 16.0)
            targets = st.multiselect("targets", TARGETS, default=["wq", "wv"])
            steps = st.number_input("max steps", 1, 1_000_000, 50)
            submitted = st.form_submit_button("Start training")
        if submitted:
            slug = derive.safe_run_name(name)
            if not slug:
                st.error("Give the run a name (letters, digits, - and _).")
            else:
                target = data.run_path(slug)
                try:
                    config = jobs.write_train_config(jobs.REPO_ROOT / preset, target / "train_config.yaml",
                                                     int(rank), float(alpha), targets or None)
                except PipelineError as exc:
                    st.error(str(exc))
                else:
                    _start(target, jobs.train_argv(config, slug, int(steps), data.results_dir()))
    shown = [(n, data.job_state(data.results_dir() / n)) for n, _ in data.all_jobs()
             if n == cand or n in alive_now]
    for name, state in shown[:4]:
        if state:
            _show_job(name, state)
    previously = st.session_state.get("jobs_alive", set())
    st.session_state["jobs_alive"] = alive_now
    if previously - alive_now:  # a job just ended: reload every page's data, stop polling
        st.rerun(scope="app")


def jobs_panel() -> None:
    """The rerun buttons and live job status; polls only while a job is running."""
    with st.sidebar:
        st.divider()
        st.subheader("Jobs")
        live = any(job.get("status") == "running" for _, job in data.all_jobs())
        st.fragment(_jobs_fragment, run_every=2.0 if live else None)()
