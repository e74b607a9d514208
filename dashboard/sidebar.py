"""The sidebar on every page: run selection (kept across pages) and the rerun jobs.

Selections live in st.session_state under "baseline", "candidate" and "rule";
the widgets are drawn on every page by app.py, so their state survives page
switches. Jobs are pipeline.jobs background processes; a fragment polls them
every 2 s only while one lives, and reruns the whole app when it ends so the
pages pick up the new metrics (their loaders are keyed on file mtime). Every
job (running, done, failed) stays in the job history with its error and log
until dismissed, whichever run folder it ran in.
"""
from __future__ import annotations

import streamlit as st

from dashboard import data, derive, train_form
from pipeline import jobs
from pipeline.checkpoint_choice import first_candidate
from pipeline.checkpoint_curve import heldout_squad_tests, saved_adapters, validation_tests
from pipeline.errors import PipelineError


def default_pair(ids: list[str]) -> tuple[str, str]:
    """(baseline, candidate) before the user picks: the newest fine-tuned run and the baseline
    its manifest or evaluate recorded (else the newest baseline run), so a new run of any
    other name never moves the pair."""
    newest = sorted(ids, key=data.created, reverse=True)
    kinds = {r: data.manifest(r).get("kind") for r in ids}
    cand = next((r for r in newest if kinds[r] == "finetuned"), None) or \
        next((r for r in newest if kinds[r] != "baseline"), newest[0])
    recorded = data.recorded_baseline(cand)
    base = recorded if recorded in ids and recorded != cand else \
        next((r for r in newest if kinds[r] == "baseline" and r != cand), None) or \
        next((r for r in newest if r != cand), cand)
    return base, cand


def _skipped() -> None:
    skipped = data.skipped_runs()
    if skipped:
        with st.sidebar.expander(f"⚠️ {len(skipped)} run folder(s) skipped", expanded=False):
            for name, why in skipped:
                st.text(f"{name}: {why}")


def selectors() -> None:
    """Baseline, candidate and headline-rule pickers; sets session_state keys."""
    ids = data.run_ids()
    st.sidebar.caption(f"results: {derive.md_code(data.results_dir())}")
    _skipped()
    if not ids:
        st.sidebar.warning("No runs yet: a run folder needs a manifest.json.")
        return
    state = st.session_state
    if state.get("baseline") not in ids or state.get("candidate") not in ids:
        base, cand = default_pair(ids)
        if state.get("baseline") not in ids:
            state["baseline"] = base
        if state.get("candidate") not in ids:
            state["candidate"] = cand
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
    st.rerun(scope="app")  # whole app: the poller must now run every 2 s


ICONS = {"running": "⏳", "done": "✅", "failed": "❌"}
HISTORY = 8  # jobs listed at most (newest first); older ones stay until dismissed


def _show_job(name: str, state: dict) -> None:
    job = state["job"]
    status = job.get("status")
    stages = job.get("stages") or []
    stage = f" ({job.get('stage')})" if len(stages) > 1 and status != "done" else ""
    with st.container(border=True):
        st.markdown(f"{ICONS.get(status, '•')} {derive.md_code(name)}: **{status}**{stage}")
        st.caption(f"{derive.md_text((job.get('started') or '')[:19].replace('T', ' '))} · "
                   f"{derive.md_code(job.get('command', '')[-90:])}")
        progress = state.get("progress")
        if state["alive"] and progress and progress.get("total"):
            frac = min(1.0, progress["done"] / progress["total"])
            eta = progress.get("eta_s")
            st.progress(frac, text=f"{progress.get('stage')}: {progress['done']}/{progress['total']}"
                                   + (f", ETA {eta:.0f}s" if eta is not None else ""))
        if status == "failed":
            st.error(job.get("error") or "failed", icon="🚨")
        if state.get("log"):
            with st.expander("log", expanded=status == "failed"):
                st.code(state["log"][-3000:], language=None)
        if status != "running":  # a callback: dismissed before the rerun draws the list
            st.button("Dismiss", key=f"job_dismiss_{derive.digest(name)}", icon=":material/close:",
                      on_click=jobs.dismiss, args=(data.results_dir() / name,))


def _jobs_fragment() -> None:
    cand = st.session_state.get("candidate")
    listed = data.all_jobs()
    alive_now = {name for name, job in listed if job.get("status") == "running"}
    if st.session_state.get("job_error"):
        st.error(st.session_state.pop("job_error"))
    if cand:
        run_dir = data.run_path(cand)
        busy = jobs.is_alive(run_dir)
        st.markdown(f"**Rerun {derive.md_code(cand)}**")
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
        if saved_adapters(run_dir):
            tests = validation_tests(run_dir)
            if st.button("Accuracy vs step", disabled=busy or tests is None, key="job_curve",
                         width="stretch", icon=":material/show_chart:",
                         help=("python -m pipeline eval-checkpoints on 200 rows of "
                               f"{tests}: each kept adapter, drawn on the Training page"
                               if tests else "no validation split beside this run's training "
                               "data: run `python -m pipeline eval-checkpoints --tests PATH`")):
                _start(run_dir, jobs.eval_checkpoints_argv(run_dir, tests))
            heldout = heldout_squad_tests(run_dir)
            if tests is not None and heldout is not None:
                last = saved_adapters(run_dir)[-1][0]
                if st.button("Choose checkpoint", disabled=busy, key="job_choose", width="stretch",
                             icon=":material/task_alt:",
                             help=(f"python -m pipeline eval-checkpoints --squad {heldout.name} "
                                   f"--choose: adapters from step {first_candidate(last)} on 200 "
                                   "validation rows "
                                   "and the held-out SQuAD items, the base model on the same "
                                   "items; the most math among those keeping 95% of the base's "
                                   "SQuAD becomes the run's adapter (re-infer to score it)")):
                    _start(run_dir, jobs.choose_checkpoint_argv(run_dir, tests, heldout, last))
        if busy and st.button("Stop job", key="job_stop"):
            jobs.stop(run_dir)
    with st.expander("Train a new adapter", expanded=False):
        train_form.form()
    if listed:
        st.markdown(f"**Job history** ({len(listed)})")
    for name, _ in listed[:HISTORY]:
        state = data.job_state(data.results_dir() / name)
        if state:
            _show_job(name, state)
    previously = st.session_state.get("jobs_alive", set())
    st.session_state["jobs_alive"] = alive_now
    if previously - alive_now:  # a job just ended: reload every page's data, stop polling
        st.rerun(scope="app")


def jobs_panel() -> None:
    """The rerun buttons, the train form and the job history; polls only while a job runs."""
    with st.sidebar:
        st.divider()
        st.subheader("Jobs")
        live = any(job.get("status") == "running" for _, job in data.all_jobs())
        st.fragment(_jobs_fragment, run_every=2.0 if live else None)()
