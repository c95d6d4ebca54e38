"""The zoom's map: a small copy of the photo with the zoom window drawn on it, where a
click, a tap or the arrow keys move the window (`static/zoom_map.js`, a Streamlit
custom component). It replaced two sliders that ran over every pixel column and row:
on a 12 MP photo one step of a phone-wide slider was 10 pixels, and the window could
not be put on a face without many tries."""

from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st

from denoiser.service import overview, png_data_uri, window

MAP_SIDE = 480  # the map's longest side in pixels: sharp at the width it is shown, light to send
CSS = """
.zmap { position: relative; width: 100%; cursor: crosshair; touch-action: manipulation; outline-offset: 2px; }
.zmap:focus-visible { outline: 3px solid #4f9dff; }
.zmap-image { position: absolute; inset: 0; width: 100%; height: 100%; user-select: none; }
.zmap-box { position: absolute; border: 2px solid #fff; box-shadow: 0 0 0 1px #000, inset 0 0 0 1px #000;
            min-width: 6px; min-height: 6px; box-sizing: border-box; pointer-events: none; }
"""
_MAP = st.components.v2.component(
    "denoiser_zoom_map", js=(Path(__file__).parent / "static" / "zoom_map.js").read_text(), css=CSS,
)


def _picked(key, shape):
    """Keeps the centre that the map sent, in the photo's pixels."""
    picked = (st.session_state.get(f"{key}_map") or {}).get("picked")
    if picked:
        h, w = shape[:2]
        st.session_state[key] = (int(np.clip(round(picked["x"] * w), 0, w - 1)),
                                 int(np.clip(round(picked["y"] * h), 0, h - 1)))


def zoom_center(image, shape, *, size, key):
    """The centre (x, y), in pixels of a photo of `shape`, of the zoom window of `size`
    pixels, as last placed on the map; the photo's centre at first. `image` is the
    photo or a smaller copy of it (uint8), drawn as the map; the centre is kept in the
    session under `key`."""
    h, w = shape[:2]
    center = st.session_state.get(key) or (w // 2, h // 2)
    center = (min(center[0], w - 1), min(center[1], h - 1))
    top, left, side = window(shape, *center, size)
    small = overview(image, max_side=MAP_SIDE)[0]
    _MAP(key=f"{key}_map", on_picked_change=partial(_picked, key, shape), data={
        "src": png_data_uri(small), "aspect": f"{w}/{h}", "box": [left / w, top / h, side / w, side / h],
        "label": "Where the zoom looks: click or tap to move it, or use the arrow keys",
    })
    st.caption("Click or tap the map to move the zoom; arrow keys move it too.")
    return center
