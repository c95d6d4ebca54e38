"""Denoise: one image, one model, the result and its numbers."""

from pathlib import Path

import streamlit as st

from denoiser.io import WRITE_FORMATS, encode_image
from denoiser.runtimes import RuntimeKind
from denoiser.service import (
    DenoiseRequest, crop, for_display, image_key, magnify, overview, preview_window, residual_view, run_request,
)
from pages.common import (
    KEPT, cached_run, demo_model_picker, device_name, estimated_level, image_input, is_cached, model_card,
    model_for_image,
    model_picker, noise_controls, require_app, runtime, strength_control, warn_outside_training,
)
from pages.slider import comparison_slider

require_app()

DEMO, NOISY = "Demo: add noise to a clean image", "My photo is already noisy"
# Nearest-neighbour zoom: at the default strength the change on a real photo shows at 2:1 or more.
MAGNIFICATIONS = [1, 2, 4]

st.title("Denoise")
st.caption("Choose the photo, the model and the strength in the sidebar (on a phone: the » at the top left).")

with st.sidebar:
    # A new upload forgets the last photo's mode, strengths and zoom.
    picture, source_name = image_input(fresh=("upload_mode", "strength_", "settled_strength_", "zoom_"))
    picture_key = image_key(picture.pixels)
    # A person's own photo is already noisy: an upload starts there, and becomes
    # "clean" only if they pick the demo. Each source keeps its own choice.
    uploaded = st.session_state.get("input_source") == "Upload"
    mode = st.radio("Mode", [NOISY, DEMO] if uploaded else [DEMO, NOISY], key="upload_mode" if uploaded else "mode",
                    persist_state=KEPT)
    if mode == DEMO:
        kind, level, seed = noise_controls()
    chosen = demo_model_picker(kind) if mode == DEMO else model_picker(key="model_real", purpose="real_photo")
    name = model_for_image(chosen, picture)
    if mode == NOISY:
        strength = strength_control(name, picture.pixels, picture_key)
    else:
        warn_outside_training(name, kind, level)
    ensemble = st.checkbox("Best quality (8× slower)", key="ensemble", persist_state=KEPT,
                           help="Averages the model's results over the eight flips and rotations of the image: "
                                "a little less noise and fewer artefacts, for eight times the time.")
    model_card(name)
    st.caption(f"Running on: **{device_name() if runtime(name).kind == RuntimeKind.KERAS else 'CPU'}**")

pixels = picture.pixels
model = runtime(name)
request = (DenoiseRequest(picture_key, name, ensemble, noise=kind, level=level, seed=seed) if mode == DEMO
           else DenoiseRequest(picture_key, name, ensemble, strength=strength))
height, width = pixels.shape[:2]


def zoom_controls():
    """The zoom window's size, magnification and centre."""
    columns = st.columns(4)
    size = columns[0].select_slider("Window (pixels)", [64, 128, 256, 384], value=128, key="zoom_size",
                                    persist_state=KEPT)
    scale = columns[1].radio("Magnification", MAGNIFICATIONS, format_func=lambda f: f"{f}:1", horizontal=True,
                             index=1, key="zoom_scale", persist_state=KEPT)
    cx = columns[2].slider("Centre x", 0, width - 1, width // 2, key="zoom_x", persist_state=KEPT)
    cy = columns[3].slider("Centre y", 0, height - 1, height // 2, key="zoom_y", persist_state=KEPT)
    return size, scale, (cx, cy)


def show_zoom(noisy, denoised, scale, after_label="denoised"):
    comparison_slider(magnify(noisy, scale), magnify(denoised, scale), after_label=after_label, element_id="zoom-cmp",
                      fill=False)


# A new strength previews the zoom window only; the whole photo (and its downloads)
# follows on the button. The first strength of a photo runs the whole photo at once.
settled = st.session_state.get(request.settled_key)
if request.previews(settled) and not is_cached(request):
    st.info(f"Strength {strength:.1f}: a preview of the zoom window below. The whole photo, and its downloads, "
            f"are still at {settled:.1f}.")
    whole = st.button(f"Denoise the whole photo at {strength:.1f}", type="primary", key="denoise_whole")
    if not whole:
        st.subheader("Zoom (preview)")
        size, scale, center = zoom_controls()
        noisy_crop, preview = preview_window(pixels, model, level=strength, center=center, size=size,
                                             ensemble=ensemble)
        show_zoom(noisy_crop, preview, scale, after_label=f"strength {strength:.1f}")
        st.stop()


def run(progress, phase):
    estimate = None if request.demo else estimated_level(picture_key, pixels)
    return run_request(request, pixels, model, bit_depth=picture.bit_depth, estimate=estimate, progress=progress,
                       phase=phase)


result = cached_run(request, run, start="Starting…", step=lambda done, total: f"Denoising… tile {done} of {total}")
if not request.demo:
    st.session_state[request.settled_key] = strength

st.caption(f"{source_name}: {width}×{height} pixels, {result.megapixels:.1f} MP. Time: "
           + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.phases.items()))

numbers = st.columns(4)
if mode == DEMO:
    numbers[0].metric("PSNR denoised", f"{result.psnr_denoised:.2f} dB", f"{result.psnr_denoised - result.psnr_noisy:+.2f} dB vs noisy")
    numbers[1].metric("PSNR noisy", f"{result.psnr_noisy:.2f} dB")
    if result.ssim_denoised is not None:
        numbers[2].metric("SSIM denoised", f"{result.ssim_denoised:.4f}", f"{result.ssim_denoised - result.ssim_noisy:+.4f} vs noisy")
else:
    numbers[0].metric("Estimated noise level", f"{result.estimated_level:.1f}",
                      help="The standard deviation of the photo's noise on the 0–255 scale, estimated from the "
                           "photo alone; on 6 held-out real photos it read 1.05 low on average (rmse 1.23).")
    if strength is not None:
        numbers[1].metric("Strength used", f"{result.level_used:.1f}")
numbers[3].metric("Time", f"{result.seconds:.2f} s", help="The model's own time on this server.")
numbers[3].caption(f"{result.megapixels_per_second:.2f} MP/s")
if mode == NOISY:
    st.caption("No PSNR or SSIM: a photo that is already noisy has no clean reference to measure against.")
elif uploaded:
    st.caption("Demo on your photo: it is taken as clean, noise is added to it, and the downloads are the "
               "denoised copy of that noisier version. For your photo itself, choose “My photo is already noisy”.")

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
comparison_slider(before, after)

st.subheader("Zoom")
size, scale, center = zoom_controls()
crops = {label: crop(image, *center, size) for label, image in shown.items()}
show_zoom(crops["noisy"], crops["denoised"], scale)
if "clean" in crops:
    st.image(for_display(magnify(crops["clean"], scale)), caption=f"clean, {scale}:1", output_format="PNG",
             width=crops["clean"].shape[1] * scale)

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
# A format that is only read (HEIC, AVIF) downloads as PNG alone.
original = picture.format if picture.format in WRITE_FORMATS and picture.format != "PNG" else None
if original:
    downloads[1].download_button(
        f"Download {original} (the original's format)",
        lambda: encode_image(result.denoised_float, original, bit_depth=picture.bit_depth, alpha=picture.alpha,
                             quality=95, icc_profile=picture.icc_profile, exif=picture.exif),
        file_name=f"{stem}_denoised{WRITE_FORMATS[original]}", key="download_original",
    )
