"""Entry point of the veilcast dashboard.

Started by the CLI as::

    python -m streamlit run dashboard/app.py --server.address 127.0.0.1 \
        --server.port PORT --server.headless true -- --results DIR

It reads ``--results DIR`` from the script arguments, draws the navigation and the runs-in-view
selection in the sidebar, and runs the chosen page. It knows only the results folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from dashboard import ui
from dashboard.paths import parse_results_arg

# Not "pages/": Streamlit treats a pages/ folder next to the entry script as a legacy multipage
# app and, on a fresh server, would run e.g. /privacy without this file around it.
PAGES = Path(__file__).resolve().parent / "views"


def navigation() -> StreamlitPage:
    """The pages, in the order a user reads them; Runs is where ``make demo`` lands."""
    return st.navigation(
        [
            st.Page(PAGES / "runs.py", title="Runs", icon=":material/table_rows:", default=True),
            st.Page(PAGES / "market.py", title="Market", icon=":material/show_chart:"),
            st.Page(PAGES / "privacy.py", title="Privacy", icon=":material/visibility_off:"),
            st.Page(PAGES / "network.py", title="Network", icon=":material/hub:"),
            st.Page(PAGES / "settlement.py", title="Settlement", icon=":material/gavel:"),
            st.Page(PAGES / "learning.py", title="Learning", icon=":material/model_training:"),
            st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare_arrows:"),
        ]
    )


def main() -> None:
    """Configure the page, resolve the results folder, draw the sidebar and run the page."""
    st.set_page_config(page_title="veilcast", page_icon=":material/visibility_off:", layout="wide")
    root = parse_results_arg(sys.argv[1:]).resolve()
    page = navigation()
    if not root.is_dir():
        st.error(f"Results folder `{root}` does not exist. Run a scenario first (veilcast run).")
        return
    ui.setup(root)
    page.run()


main()
