"""The before/after slider: `static/slider.html` (HTML, CSS and inline JavaScript),
filled in here and shown with `st.html`. Nothing is fetched from the network, and both
images travel as lossless PNG. The divider follows a drag, or the arrow keys once it
has focus (Shift for larger steps); the handle's shadow lives in the style sheet, not
inline, so that the focus rule can replace it (the range input itself is invisible)."""

from html import escape
from pathlib import Path
from string import Template

import streamlit as st

from denoiser.service import png_data_uri

TEMPLATE = Template((Path(__file__).parent / "static" / "slider.html").read_text())
VIEWPORT_SHARE = 80  # the slider's largest height, in % of the window's


def comparison_slider(before, after, *, before_label="noisy", after_label="denoised", element_id="cmp", fill=True):
    """Shows uint8 HWC `before` and `after` under one divider. With `fill` the slider is
    as wide as its column, and smoothed where the browser enlarges it; otherwise at most
    1:1, with square pixels (a magnified zoom). Never taller than most of the window, so
    that both labels and the caption show."""
    h, w = before.shape[:2]
    width = f"width:min(100%, calc({VIEWPORT_SHARE}vh * {w / h:.4f}))" + ("" if fill else f";max-width:{w}px")
    st.html(TEMPLATE.substitute(
        element_id=element_id, width=width, aspect=f"{w}/{h}", before_src=png_data_uri(before),
        after_src=png_data_uri(after), rendering="auto" if fill else "pixelated",
        before_label=escape(before_label), after_label=escape(after_label),
    ), unsafe_allow_javascript=True)
