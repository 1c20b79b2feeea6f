"""The dashboard pages (layouts only): data comes from dashboard.data, shapes from queries.

The folder is not called ``pages`` on purpose: Streamlit would treat ``pages/`` next to
``app.py`` as a legacy multipage app and run a page without the entry script around it.
"""
