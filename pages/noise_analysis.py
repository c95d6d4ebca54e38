"""Noise analysis: PSNR against sigma for each model, live and cached."""

import pandas as pd
import plotly.express as px
import streamlit as st

from denoiser.service import image_key, psnr_sweep
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
st.write("How each model's PSNR falls as the noise grows, on one image: white Gaussian noise, or a "
         "simulated camera at rising ISO.")

picture, source_name = image_input(key="analysis_input")
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
