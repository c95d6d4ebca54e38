"""Noise analysis: a photo's own noise (its profile, read from the photo alone), and
PSNR against sigma for each model, live and cached."""

import pandas as pd
import plotly.express as px
import streamlit as st

from denoiser.profile import profile
from denoiser.service import image_key, profile_rows, psnr_sweep
from pages.common import (
    KEPT, NOISE_LABELS, cached_run, default_comparison, image_input, legend_below, model_names,
    note_colour_models_on_gray, note_upload_taken_as_clean,
    require_app, runtime, short_label,
)

# Each sweep's levels and default: Gaussian sigma, or the camera's ISO in hundreds.
SWEEPS = {"gaussian": ([5, 10, 15, 25, 35, 50, 75], [15, 25, 50]), "camera": ([2, 4, 8, 16, 32, 64], [4, 16, 64])}
LEVEL_NAMES = {"gaussian": "noise sigma (0–255)", "camera": "ISO in hundreds"}

require_app()

st.title("Noise analysis")
st.write("What the photo's own noise is, and how each model's PSNR falls as noise is added: white Gaussian "
         "noise, or a simulated camera at rising ISO.")

picture, source_name = image_input(key="analysis_input")


@st.cache_data(max_entries=8, show_spinner="Reading the photo's noise…")
def photo_profile(_pixels, key, jpeg_quality):
    return profile(_pixels, jpeg_quality=jpeg_quality)


st.subheader("The photo's own noise")
found = photo_profile(picture.pixels, image_key(picture.pixels), picture.jpeg_quality)
levels, correlation = profile_rows(found)
facts = st.columns(3)
facts[0].metric("Noise level (std, 0–255)", f"{found.std:.1f}",
                help="Read from the photo alone, in its flattest parts; nothing is added.")
facts[1].metric("Brightness : colour noise", f"{found.luma_chroma:.1f}" if picture.channels == 3 else "gray",
                help="Cameras keep less colour noise than brightness noise: 1.4 to 1.7 for the four measured "
                     "cameras (docs/noise.md).")
facts[2].metric("JPEG quality", found.jpeg_quality if found.jpeg_quality is not None else "not a JPEG")
charts = st.columns(2)
charts[0].plotly_chart(legend_below(px.line(
    levels, x="brightness", y="std", color="channel", markers=True,
    color_discrete_map={"red": "#d62728", "green": "#2ca02c", "blue": "#1f77b4", "gray": "#555555"},
    labels={"brightness": "brightness (0–255)", "std": "noise std (0–255)"},
    title="Level against brightness (flattest parts)")), key="profile_levels")
charts[1].plotly_chart(px.line(
    correlation, x="distance", y="correlation", markers=True, range_y=[-0.1, 1.05],
    labels={"distance": "distance (pixels)"}, title="Correlation of neighbours"), key="profile_correlation")
st.caption("Read in the photo's flattest blocks, each less its own smooth change of light: a lower bound of the level "
           "where the photo has no flat parts at that brightness, and of the correlation beyond a few pixels.")

st.subheader("PSNR as noise is added")
with st.sidebar:
    kind = st.selectbox("Noise type", SWEEPS, format_func=NOISE_LABELS.get, key="analysis_kind",
                        persist_state=KEPT)
    camera = kind == "camera"
    chosen = st.multiselect("Models", model_names("real_photo" if camera else "gaussian"),
                            default=default_comparison(camera), format_func=short_label,
                            key=f"analysis_models{'_camera' if camera else ''}", persist_state=KEPT,
                            help="Two networks and a classical filter to begin with; add any others.")
    options, default = SWEEPS[kind]
    levels = st.multiselect("ISO in hundreds" if camera else "Sigmas", options, default=default,
                            key=f"analysis_sigmas{'_camera' if camera else ''}", persist_state=KEPT)
    seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="analysis_seed", persist_state=KEPT)

if not chosen or not levels:
    st.info(f"Choose at least one model and one {'ISO' if camera else 'sigma'}.")
    st.stop()
note_upload_taken_as_clean("analysis_input")
note_colour_models_on_gray(picture, chosen)

key = ("sweep", kind, image_key(picture.pixels), tuple(chosen), tuple(sorted(levels)), int(seed))
rows = cached_run(
    key,
    lambda progress, phase: psnr_sweep(
        picture.pixels, {name: runtime(name) for name in chosen}, sorted(levels), seed=int(seed), kind=kind,
        progress=progress,
    ),
    start="Measuring…", step=lambda done, total: f"{done} of {total} runs", unit="run",
)

level_name = LEVEL_NAMES[kind]
table = pd.DataFrame(rows).rename(columns={"level": level_name})
table["model"] = table["model"].map(lambda name: name if name == "noisy input" else short_label(name))
figure = px.line(table, x=level_name, y="psnr", color="model", markers=True, labels={"psnr": "PSNR (dB)"},
                 title=f"PSNR against {'ISO' if camera else 'sigma'} on {source_name}")
st.plotly_chart(legend_below(figure), key="analysis_chart")
st.dataframe(table.pivot(index=level_name, columns="model", values="psnr").round(2), key="analysis_table")
