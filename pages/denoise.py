"""Denoise: one image, one model, the result and its numbers."""

from pathlib import Path

import streamlit as st

from denoiser.io import WRITE_FORMATS, encode_image
from denoiser.runtimes import RuntimeKind
from denoiser.service import (
    comparison_slider_html, crop, for_display, image_key, overview, residual_view, run_demo, run_noisy_photo,
)
from pages.common import (
    cached_run, device_name, estimated_level, image_input, model_card, model_for_image, model_picker, noise_controls,
    require_app, runtime, strength_control, warn_outside_training,
)

require_app()

DEMO, NOISY = "Demo: add noise to a clean image", "My photo is already noisy"

st.title("Denoise")
st.caption("Choose the photo, the model and the strength in the sidebar (on a phone: the » at the top left).")

with st.sidebar:
    picture, source_name = image_input()
    picture_key = image_key(picture.pixels)
    mode = st.radio("Mode", [DEMO, NOISY], key="mode")
    if mode == DEMO:
        kind, level, seed = noise_controls()
    name = model_for_image(model_picker(key="model" if mode == DEMO else "model_real", real_photo=mode == NOISY),
                           picture)
    if mode == NOISY:
        strength = strength_control(name, picture.pixels, picture_key)
    else:
        warn_outside_training(name, kind, level)
    ensemble = st.checkbox("Best quality (8× slower)", key="ensemble",
                           help="Averages the model's results over the eight flips and rotations of the image: "
                                "a little less noise and fewer artefacts, for eight times the time.")
    model_card(name)
    st.caption(f"Running on: **{device_name() if runtime(name).kind == RuntimeKind.KERAS else 'CPU'}**")

pixels = picture.pixels
model = runtime(name)
params = (picture_key, name, mode, ensemble) + ((kind, level, seed) if mode == DEMO else (strength,))


def run(progress, phase):
    if mode == DEMO:
        return run_demo(pixels, model, kind=kind, level=level, seed=seed, bit_depth=picture.bit_depth,
                        progress=progress, phase=phase, ensemble=ensemble)
    return run_noisy_photo(pixels, model, level=strength, estimate=estimated_level(picture_key, pixels),
                           bit_depth=picture.bit_depth, progress=progress, phase=phase, ensemble=ensemble)


result = cached_run(params, run, start="Starting…", step=lambda done, total: f"Denoising… tile {done} of {total}")

height, width = result.denoised.shape[:2]
st.caption(f"{source_name}: {width}×{height} pixels, {result.megapixels:.1f} MP. Time: "
           + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.phases.items()))

numbers = st.columns(4)
if mode == DEMO:
    numbers[0].metric("PSNR denoised", f"{result.psnr_denoised:.2f} dB", f"{result.psnr_denoised - result.psnr_noisy:+.2f} dB vs noisy")
    numbers[1].metric("PSNR noisy", f"{result.psnr_noisy:.2f} dB")
    if result.ssim_denoised is not None:
        numbers[2].metric("SSIM denoised", f"{result.ssim_denoised:.4f}", f"{result.ssim_denoised - result.ssim_noisy:+.4f} vs noisy")
else:
    numbers[0].metric("Estimated noise level", f"{result.estimated_sigma:.1f}",
                      help="The standard deviation of the photo's noise on the 0–255 scale, estimated from the "
                           "photo alone; on 6 held-out real photos it read 1.05 low on average (rmse 1.23).")
    if strength is not None:
        numbers[1].metric("Strength used", f"{result.sigma_used:.1f}")
numbers[3].metric("Time", f"{result.seconds:.2f} s", help="The model's own time on this server.")
numbers[3].caption(f"{result.megapixels_per_second:.2f} MP/s")
if mode == NOISY:
    st.caption("No PSNR or SSIM: a photo that is already noisy has no clean reference to measure against.")

shown = {"noisy": result.noisy, "denoised": result.denoised}
if result.clean is not None:
    shown["clean"] = result.clean
views = {label: overview(image) for label, image in shown.items()}
factor = views["noisy"][1]
columns = st.columns(len(views))
for column, (label, (image, _)) in zip(columns, views.items()):
    column.image(for_display(image), caption=label if factor == 1 else f"{label} (shown at 1/{factor})",
                 output_format="PNG", width="stretch")

st.subheader("Before / after")
before, after = views["noisy"][0], views["denoised"][0]
if factor > 1:
    st.caption(f"Overview at 1/{factor} scale; the 1:1 zoom below shows the real pixels.")
st.html(comparison_slider_html(before, after), unsafe_allow_javascript=True)

st.subheader("1:1 zoom")
zoom_columns = st.columns(3)
size = zoom_columns[0].select_slider("Zoom window", [64, 128, 256, 384], value=256, key="zoom_size")
cx = zoom_columns[1].slider("Centre x", 0, width - 1, width // 2, key="zoom_x")
cy = zoom_columns[2].slider("Centre y", 0, height - 1, height // 2, key="zoom_y")
crops = {label: crop(image, cx, cy, size) for label, image in shown.items()}
st.html(comparison_slider_html(crops["noisy"], crops["denoised"], element_id="zoom", fill=False),
        unsafe_allow_javascript=True)
crop_columns = st.columns(len(crops))
for column, (label, image) in zip(crop_columns, crops.items()):
    column.image(for_display(image), caption=f"{label}, 1:1", output_format="PNG")

st.subheader("What the model removed")
residual = residual_view(views["noisy"][0], views["denoised"][0])
st.image(for_display(residual), caption="noisy − denoised, amplified 4× around mid-gray",
         output_format="PNG", width="stretch")

st.subheader("Download")
stem = Path(source_name).stem
downloads = st.columns(2)
downloads[0].download_button(
    "Download PNG (lossless, full resolution)",
    lambda: encode_image(result.denoised_float, "PNG", bit_depth=picture.bit_depth, alpha=picture.alpha,
                         icc_profile=picture.icc_profile, exif=picture.exif),
    file_name=f"{stem}_denoised.png", mime="image/png", key="download_png",
)
original = picture.format if picture.format != "PNG" else None
if original:
    downloads[1].download_button(
        f"Download {original} (the original's format)",
        lambda: encode_image(result.denoised_float, original, bit_depth=picture.bit_depth, alpha=picture.alpha,
                             quality=95, icc_profile=picture.icc_profile, exif=picture.exif),
        file_name=f"{stem}_denoised{WRITE_FORMATS[original]}", key="download_original",
    )
