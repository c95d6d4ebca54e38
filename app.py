"""Entry point: `streamlit run app.py`. Pages live in pages/; the work in denoiser/."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import streamlit as st  # noqa: E402

from pages.common import APP_MARK  # noqa: E402

st.set_page_config(page_title="Denoiser", page_icon=":sparkles:", layout="wide")

navigation = st.navigation([
    st.Page("pages/denoise.py", title="Denoise", icon=":material/auto_fix_high:", default=True),
    st.Page("pages/compare.py", title="Compare models", icon=":material/compare:"),
    st.Page("pages/noise_analysis.py", title="Noise analysis", icon=":material/query_stats:"),
    st.Page("pages/about.py", title="About", icon=":material/info:"),
])
st.session_state[APP_MARK] = True
navigation.run()
