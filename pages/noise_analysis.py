"""Noise analysis: PSNR against sigma for each model, live and cached."""

import pandas as pd
import plotly.express as px
import streamlit as st

from denoiser.service import image_key, psnr_sweep
from pages.common import image_input, model_label, model_names, note_colour_models_on_gray, result_cache, runtime, require_app

require_app()

st.title("Noise analysis")
st.write("How each model's PSNR falls as Gaussian noise grows, on one image.")

with st.sidebar:
    picture, source_name = image_input(key="analysis_input")
    chosen = st.multiselect("Models", model_names(), default=model_names()[:3], format_func=model_label, key="analysis_models")
    sigmas = st.multiselect("Sigmas", [5, 10, 15, 25, 35, 50, 75], default=[15, 25, 50], key="analysis_sigmas")
    seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="analysis_seed")

if not chosen or not sigmas:
    st.info("Choose at least one model and one sigma.")
    st.stop()
note_colour_models_on_gray(picture, chosen)

key = ("sweep", image_key(picture.pixels), tuple(chosen), tuple(sorted(sigmas)), int(seed))
cache = result_cache()
rows = cache.get(key)
if rows is None:
    bar = st.progress(0.0, text="Measuring…")
    rows = psnr_sweep(
        picture.pixels, {name: runtime(name) for name in chosen}, sorted(sigmas), seed=int(seed),
        progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total} runs"),
    )
    bar.empty()
    cache.put(key, rows)

table = pd.DataFrame(rows)
table["model"] = table["model"].map(lambda name: name if name == "noisy input" else model_label(name))
figure = px.line(table, x="sigma", y="psnr", color="model", markers=True,
                 labels={"sigma": "noise sigma (0–255)", "psnr": "PSNR (dB)"}, title=f"PSNR against sigma on {source_name}")
st.plotly_chart(figure, key="analysis_chart")
st.dataframe(table.pivot(index="sigma", columns="model", values="psnr").round(2), key="analysis_table")
