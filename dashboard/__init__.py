"""Streamlit dashboard over results/ (see app.py)."""
