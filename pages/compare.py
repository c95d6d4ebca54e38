"""Compare models: every model on the same image and the same noise."""

import pandas as pd
import plotly.express as px
import streamlit as st

from denoiser.service import compare_models, crop, for_display, image_key
from pages.common import (
    KEPT, cached_run, default_comparison, image_input, legend_below, manifest, model_names, noise_controls,
    note_colour_models_on_gray, note_upload_taken_as_clean, require_app, runtime, short_label,
)
from pages.zoom_map import zoom_center

CROP_SIZE = 128

require_app()

st.title("Compare models")

picture, source_name = image_input(key="compare_input")
with st.sidebar:
    kind, level, seed = noise_controls(key="compare_noise")
    chosen = st.multiselect("Models", model_names(), default=default_comparison(), format_func=short_label,
                            key="compare_models", persist_state=KEPT,
                            help="Three fast models to begin with; add any others.")

note_upload_taken_as_clean("compare_input")
if not chosen:
    st.info("Choose at least one model.")
    st.stop()
note_colour_models_on_gray(picture, chosen)

pixels = picture.pixels
height, width = pixels.shape[:2]
key = ("compare", image_key(pixels), tuple(chosen), kind, level, seed)
comparison = cached_run(
    key,
    lambda progress, phase: compare_models(
        pixels, {name: runtime(name) for name in chosen}, kind=kind, level=level, seed=seed,
        sizes={name: manifest().get(name, {}).get("file_mb") for name in chosen}, progress=progress,
    ),
    start="Running every model…", step=lambda done, total: f"Model {done} of {total} done", unit="model",
)

table = pd.DataFrame([
    {"model": short_label(r.model), "PSNR (dB)": round(r.psnr, 2),
     "SSIM": None if r.ssim is None else round(r.ssim, 4), "time (s)": round(r.seconds, 3), "file": f"{r.size_mb:.1f} MB" if r.size_mb is not None else "no file"}
    for r in comparison.rows
])
st.caption(f"{source_name}, {width}×{height}; noisy input PSNR {comparison.psnr_noisy:.2f} dB")
st.dataframe(table, hide_index=True, key="compare_table")

figure = px.scatter(table, x="time (s)", y="PSNR (dB)", color="model", hover_name="model", title="Quality against time")
figure.update_traces(marker_size=12)
st.plotly_chart(legend_below(figure), key="compare_chart")

# The crops come from the cached whole outputs: moving the crop runs no model.
size = min(CROP_SIZE, height, width)
st.subheader(f"The same {size}×{size} crop, 1:1")
with st.columns([1, 2])[0]:
    cx, cy = zoom_center(comparison.clean, pixels.shape, size=size, key="compare_center")
crops = [("clean", comparison.clean), ("noisy", comparison.noisy)] + [
    (short_label(r.model), r.denoised) for r in comparison.rows
]
for start in range(0, len(crops), 4):
    columns = st.columns(4)
    for column, (label, image) in zip(columns, crops[start : start + 4]):
        column.image(for_display(crop(image, cx, cy, size)), caption=label, output_format="PNG", width=size)
