"""About: how the app works, and the model cards."""

import pandas as pd
import streamlit as st

from denoiser.catalog import model_summary
from pages.common import manifest, model_card, model_label, model_names, require_app

require_app()

st.title("About")
st.markdown(
    """
**Residual learning.** DnCNN (Zhang et al., 2017) and RIDNet (Anwar and Barnes, 2019)
do not draw the clean image: they estimate the noise and subtract it from the input.
The noise is simpler to learn than the picture, and one model covers a whole range of
noise levels ("blind" models, trained here for sigma 0–55).

**Tiling with overlap.** A photo is cut into tiles that overlap by at least the
model's receptive radius (17 pixels for DnCNN), run in batches, and stitched by
keeping only each tile's centre. For DnCNN the stitched result equals whole-image
inference to within 1e-5, so there are no seams and no cropped border, and memory
depends on the batch of tiles, not on the photo.

**Quantization.** The LiteRT variants store weights in float16 or int8. The int8
models run the convolutions in 8-bit integers, several times faster on a CPU; the
model card gives the PSNR each variant costs. The interpreter's input is resized to
the image's tiles once per image, so that it is invoked once per batch of tiles.

**Already noisy photos.** In that mode nothing is added: the app estimates the noise
level from the photo itself, as the spread of its flattest 16x16 blocks once each
block's own smooth change of light is taken out, scaled to a whole photo's noise on four real
cameras (`estimate_level`; a wavelet estimate reads a fifth of camera noise, whose
finest detail JPEG removes first), and claims no PSNR or SSIM, since there is no clean
reference.

**Honest numbers.** PSNR and SSIM follow one protocol: output rounded to 8 bits, data
range 255, all pixels and channels, Gaussian-window SSIM.
"""
)

st.header("The models")
names = model_names()
if not manifest():
    st.info("No trained models are installed in models/ yet; the classical filters are available.")
st.dataframe(pd.DataFrame([model_summary(name, manifest()) for name in names]), hide_index=True, key="about_models")
st.caption("Quality as measured where each model was published; its speed on this server shows beside the model "
           "on the Denoise page.")
st.subheader("Details and provenance")
for name in names:
    with st.expander(model_label(name)):
        model_card(name)
