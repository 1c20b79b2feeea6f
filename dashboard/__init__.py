"""veilcast's dashboard: a Streamlit app that reads only a results folder (JSON and Parquet).

Started by ``veilcast dashboard`` as ``streamlit run dashboard/app.py -- --results DIR``. It
imports neither ``sim`` nor ``market``. Layout: ``app`` (entry and navigation), ``ui`` (shared
sidebar and messages), ``data`` (cached loaders), ``catalog`` (run discovery), ``paths`` (safe
path resolution), ``queries`` and ``shapes`` (pure polars), ``charts`` (pure altair) and
``views`` (one layout per page).
"""
