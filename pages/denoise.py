"""Denoise: one image, one model, the result and its numbers."""

from dataclasses import replace
from pathlib import Path

import streamlit as st

from denoiser.catalog import load_runtime
from denoiser.io import WRITE_FORMATS, encode_image, to_float, to_integer
from denoiser.runtimes import RuntimeKind
from denoiser.service import (
    DenoiseRequest, crop, for_display, image_key, magnify, overview, preview_window, residual_view, run_request,
)
from pages.common import (
    KEPT, cached_result, cached_run, demo_model_picker, device_name, estimated_level, expected_seconds, fast_model,
    image_input, model_card, model_for_image, noise_controls, note_rate, photo_model_picker, require_app, runtime,
    short_label, strength_control, warn_outside_training, warn_real_photo_model_on_added_noise,
)
from pages.slider import comparison_slider

require_app()

DEMO, NOISY = "Demo: add noise to a clean image", "My photo is already noisy"
# Nearest-neighbour zoom: at the default strength the change on a real photo shows at 2:1 or more.
MAGNIFICATIONS = [1, 2, 4]

st.title("Denoise")
# The photo is chosen here, in the page itself, where a phone shows it; the model and
# the strength are in the sidebar (on a phone: the » at the top left).
picture, source_name = image_input(fresh=("upload_mode", "strength_", "settled_strength_", "zoom_"))
picture_key = image_key(picture.pixels)
uploaded = st.session_state.get("input_source") == "Upload"

with st.sidebar:
    # A person's own photo is already noisy: an upload starts there, and becomes
    # "clean" only if they pick the demo. Each source keeps its own choice.
    mode = st.radio("Mode", [NOISY, DEMO] if uploaded else [DEMO, NOISY], key="upload_mode" if uploaded else "mode",
                    persist_state=KEPT)
    if mode == DEMO:
        kind, level, seed = noise_controls()
    name = model_for_image(demo_model_picker(kind) if mode == DEMO else photo_model_picker(), picture)
    if mode == NOISY:
        strength = strength_control(name, picture.pixels, picture_key)
    ensemble = st.checkbox("Best quality (8× slower)", key="ensemble", persist_state=KEPT,
                           help="Averages the model's results over the eight flips and rotations of the image: "
                                "a little less noise and fewer artefacts, for eight times the time.")
    model_card(name)
    st.caption(f"Running on: **{device_name() if runtime(name).kind == RuntimeKind.KERAS else 'CPU'}**")

if mode == DEMO:
    # In the page, where a phone shows them, not below the sidebar's fold.
    warn_outside_training(name, kind, level)
    warn_real_photo_model_on_added_noise(name, kind)
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


def preview(settled):
    """A new strength on a photo whose whole was denoised at `settled`: the zoom window
    at the new strength at once, and the button for the whole photo. Returns whether
    the whole photo is to run now; the note and the button go as soon as it does."""
    notice = st.empty()
    with notice.container():
        st.info(f"Strength {strength:.1f}: the zoom window below shows it. The whole photo, its overview and its "
                f"downloads further down are still at {settled:.1f}.")
        whole = st.button(f"Denoise the whole photo at {strength:.1f}", type="primary", key="denoise_whole")
    if whole:
        notice.empty()
        return True
    st.subheader(f"Zoom at strength {strength:.1f}")
    size, scale, center = zoom_controls()
    noisy_crop, denoised_crop = preview_window(pixels, model, level=strength, center=center, size=size,
                                               ensemble=ensemble)
    show_zoom(noisy_crop, denoised_crop, scale, after_label=f"strength {strength:.1f}")
    return False


def picture_at_once():
    """The photo, shown while the model runs, with the time it should take here."""
    # Downscaled first, then rounded: no full-size uint8 copy of the photo (72 MB at 24 MP).
    small, factor = overview(pixels)
    shown = to_integer(small)
    seconds = expected_seconds(name, width * height / 1e6, ensemble=ensemble)
    wait = f"about {seconds:.0f} s on this server" if seconds is not None else "the first run here times it"
    slot = st.empty()
    with slot.container():
        st.caption(f"{source_name}, {width}×{height}" + (f" (shown at 1/{factor})" if factor > 1 else "")
                   + f": denoising, {wait}.")
        st.image(for_display(shown), output_format="PNG", width="stretch")
    return slot


# From this size a slower model is preceded by the "Fast" choice's result on the whole
# photo, so that neither the first denoised picture nor the first download waits for it.
FAST_PREVIEW_MEGAPIXELS = 2.0


def fast_preview(slot):
    """The fast model's result in `slot`, with its download, while the chosen model
    runs. Only its denoised pixels are kept (3 bytes a pixel), not a whole Result."""
    fast = fast_model()
    megapixels = width * height / 1e6
    if request.demo or fast in (None, name) or megapixels < FAST_PREVIEW_MEGAPIXELS:
        return
    # Loaded for this run alone, not kept: two interpreters' buffers held at once took a
    # 24 MP photo from 1,308 to 1,545 MB on the server.
    quick = run_request(replace(request, model=fast, ensemble=False), pixels, load_runtime(fast),
                        bit_depth=picture.bit_depth, estimate=estimated_level(picture_key, pixels))
    note_rate(fast, quick.megapixels_per_second)
    before, after = overview(quick.noisy)[0], overview(quick.denoised)[0]
    denoised, seconds = quick.denoised, quick.seconds
    del quick
    expected = expected_seconds(name, megapixels, ensemble=ensemble)
    wait = f"about {expected:.0f} s more" if expected is not None else "timed here by this first run"
    with slot.container():
        st.caption(f"A fast preview ({short_label(fast)}, {seconds:.1f} s); {short_label(name)}, the model chosen, "
                   f"follows: {wait}.")
        comparison_slider(before, after, after_label="fast preview", element_id="fast-cmp")
        st.download_button("Download this fast result (PNG)", lambda: encode_image(
            to_float(denoised), "PNG", alpha=picture.alpha, icc_profile=picture.icc_profile, exif=picture.exif),
            file_name=f"{Path(source_name).stem}_fast.png", mime="image/png", key="download_fast", on_click="ignore")


def run(progress, phase):
    estimate = None if request.demo else estimated_level(picture_key, pixels)
    return run_request(request, pixels, model, bit_depth=picture.bit_depth, estimate=estimate, progress=progress,
                       phase=phase)


settled = st.session_state.get(request.settled_key)
result = cached_result(request)
# While a new strength is previewed, the zoom is the preview's, at the new strength.
previewing = False
if result is None and request.previews(settled):
    shown_instead = cached_result(replace(request, strength=settled))
    if not preview(settled):
        if shown_instead is None:
            st.stop()
        result, previewing = shown_instead, True
        st.divider()
        st.subheader(f"The whole photo, at strength {settled:.1f}")
if result is None:
    slot = picture_at_once()
    fast_preview(slot)
    result = cached_run(request, run, start="Starting…",
                        step=lambda done, total: f"Denoising… tile {done} of {total}")
    note_rate(name, result.megapixels_per_second * (8 if ensemble else 1))
    slot.empty()
    if not request.demo:
        st.session_state[request.settled_key] = strength

st.caption(f"{source_name}: {width}×{height} pixels, {result.megapixels:.1f} MP. Time: "
           + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in result.phases.items()))

# The picture first: the before/after, then its numbers and downloads.
shown = {"noisy": result.noisy, "denoised": result.denoised}
if result.clean is not None:
    shown["clean"] = result.clean
views = {label: overview(image) for label, image in shown.items()}
factor = views["noisy"][1]

before, after = views["noisy"][0], views["denoised"][0]
if factor > 1:
    st.caption(f"Overview at 1/{factor} scale; the 1:1 zoom below shows the real pixels.")
comparison_slider(before, after)

numbers = st.columns(4)
if mode == DEMO:
    numbers[0].metric("PSNR denoised", f"{result.psnr_denoised:.2f} dB",
                      f"{result.psnr_denoised - result.psnr_noisy:+.2f} dB vs noisy")
    numbers[1].metric("PSNR noisy", f"{result.psnr_noisy:.2f} dB")
    if result.ssim_denoised is not None:
        numbers[2].metric("SSIM denoised", f"{result.ssim_denoised:.4f}",
                          f"{result.ssim_denoised - result.ssim_noisy:+.4f} vs noisy")
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

# The downloads come first, so that a phone reaches them without scrolling past every view.
stem = Path(source_name).stem
downloads = st.columns(2)
downloads[0].download_button(
    "Download PNG (lossless, full resolution)",
    lambda: encode_image(result.denoised_float, "PNG", bit_depth=picture.bit_depth, alpha=picture.alpha,
                         icc_profile=picture.icc_profile, exif=picture.exif),
    file_name=f"{stem}_denoised.png", mime="image/png", key="download_png", on_click="ignore",
)
# A format that is only read (HEIC, AVIF) downloads as PNG alone.
original = picture.format if picture.format in WRITE_FORMATS and picture.format != "PNG" else None
if original:
    downloads[1].download_button(
        f"Download {original} (the original's format)",
        lambda: encode_image(result.denoised_float, original, bit_depth=picture.bit_depth, alpha=picture.alpha,
                             quality=95, icc_profile=picture.icc_profile, exif=picture.exif),
        file_name=f"{stem}_denoised{WRITE_FORMATS[original]}", key="download_original", on_click="ignore",
    )

if not previewing:
    st.subheader("Zoom")
    size, scale, center = zoom_controls()
    crops = {label: crop(image, *center, size) for label, image in shown.items()}
    show_zoom(crops["noisy"], crops["denoised"], scale)
    if "clean" in crops:
        st.image(for_display(magnify(crops["clean"], scale)), caption=f"clean, {scale}:1", output_format="PNG",
                 width=crops["clean"].shape[1] * scale)

columns = st.columns(len(views))
for column, (label, (image, _)) in zip(columns, views.items()):
    column.image(for_display(image), caption=label if factor == 1 else f"{label} (shown at 1/{factor})",
                 output_format="PNG", width="stretch")

st.subheader("What the model removed")
residual = residual_view(views["noisy"][0], views["denoised"][0])
st.image(for_display(residual), caption="noisy − denoised, amplified 4× around mid-gray",
         output_format="PNG", width="stretch")
