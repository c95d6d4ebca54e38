"""Denoise: one image, one model, the result and its numbers."""

from dataclasses import replace
from pathlib import Path

import streamlit as st

from denoiser.catalog import load_runtime
from denoiser.engine import DIHEDRAL
from denoiser.io import WRITE_FORMATS, encode_image, to_float, to_integer
from denoiser.runtimes import RuntimeKind
from denoiser.session import (
    FAST_KEPT, FRESH_ON_UPLOAD, Show, expected_wait as wait_words, fast_request as fast_request_for, holds, plan,
    preview_side as side_for,
)
from denoiser.service import (
    DenoiseRequest, crop, for_display, image_key, magnify, overview, preview_overview, preview_window, residual_view,
    run_request,
)
from pages.common import (
    KEPT, cached_result, cached_run, demo_model_picker, device_name, estimated_level, expected_seconds, fast_model,
    forget_stop, image_input, model_card, model_for_image, noise_controls, note_rate, photo_model_picker,
    require_app, runtime, short_label, stop_note, stopped_run, strength_control, warn_outside_training,
    warn_real_photo_model_on_added_noise,
)
from pages.slider import comparison_slider
from pages.zoom_map import zoom_center

require_app()

DEMO, NOISY = "Demo: add noise to a clean image", "My photo is already noisy"
# Nearest-neighbour zoom: at the default strength the change on a real photo shows at 2:1 or more.
MAGNIFICATIONS = [1, 2, 4]

st.title("Denoise")
# The photo is chosen here, in the page itself, where a phone shows it; the model and
# the strength are in the sidebar (on a phone: the » at the top left).
picture, source_name = image_input(fresh=FRESH_ON_UPLOAD)
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
    ensemble = st.checkbox(f"Best quality ({DIHEDRAL}× slower)", key="ensemble", persist_state=KEPT,
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


def zoom_section(title, overview_image, crops_at):
    """The zoom: its window and magnification, the map that places it, and the before/after
    of `crops_at(center, size)`, which gives (noisy, denoised, after label) crops."""
    st.subheader(title)
    controls = st.columns(2)
    size = controls[0].select_slider("Window (pixels)", [64, 128, 256, 384], value=128, key="zoom_size",
                                     persist_state=KEPT)
    scale = controls[1].radio("Magnification", MAGNIFICATIONS, format_func=lambda f: f"{f}:1", horizontal=True,
                              index=1, key="zoom_scale", persist_state=KEPT)
    where, shown = st.columns([1, 2])
    with where:
        center = zoom_center(overview_image, pixels.shape, size=size, key="zoom_center")
    with shown:
        noisy_crop, denoised_crop, after_label = crops_at(center, size)
        comparison_slider(magnify(noisy_crop, scale), magnify(denoised_crop, scale), after_label=after_label,
                          element_id="zoom-cmp", fill=False)
    return center, size, scale


def preview_side():
    """The longest side of the strength preview of the photo (`session.preview_side`)."""
    return side_for(width, height, expected_seconds(name, 1.0, ensemble=ensemble))


@st.cache_data(max_entries=8, show_spinner=False)
def overview_at(key, _pixels, model_name, level, estimate, side, average):
    return preview_overview(_pixels, runtime(model_name), level=level, estimate=estimate, max_side=side,
                            ensemble=average)


def strength_preview():
    """The photo and the zoom at the new strength, in a fraction of the whole photo's time."""
    label = f"strength {strength:.1f}"
    st.subheader(f"Preview at {label}")
    before, after = overview_at(picture_key, pixels, name, strength, estimated_level(picture_key, pixels),
                                preview_side(), ensemble)
    comparison_slider(before, after, after_label=label, element_id="preview-cmp")
    st.caption("A quick preview on a smaller copy of the photo; the zoom below shows the real pixels at this "
               "strength.")
    zoom_section(f"Zoom at {label}", before, lambda center, size: (*preview_window(
        pixels, model, level=strength, center=center, size=size, ensemble=ensemble), label))


def hold(settled, stop):
    """What a photo shows instead of a run of the whole: after a Stop (`stop`, where it
    stopped), or while a new strength is previewed (`settled`, the strength of the whole
    photo shown). Returns whether the button asked for the whole photo now; the notes
    and the button go as soon as it did."""
    notice = st.empty()
    with notice.container():
        if stop is not None:
            st.warning(f"{stop_note(stop, 'tile')} {short_label(name)} did not finish the whole photo.")
        if settled is not None:
            st.info(f"Strength {strength:.1f}: the preview and the zoom below show it. The whole photo's numbers "
                    f"and downloads further down are still at {settled:.1f}.")
        at = f" at {request.strength:.1f}" if request.strength is not None else ""
        whole = st.button(f"Denoise the whole photo{at}", type="primary", key="denoise_whole")
    if whole:
        notice.empty()
        forget_stop()
    return whole


def picture_at_once(status):
    """The photo, shown while the model runs or after a Stop; `status` follows its name and size."""
    # Downscaled first, then rounded: no full-size uint8 copy of the photo (72 MB at 24 MP).
    small, factor = overview(pixels)
    slot = st.empty()
    with slot.container():
        st.caption(f"{source_name}, {width}×{height}" + (f" (shown at 1/{factor})" if factor > 1 else "")
                   + f": {status}.")
        st.image(for_display(to_integer(small)), output_format="PNG", width="stretch")
    return slot


def expected_wait():
    return wait_words(expected_seconds(name, width * height / 1e6, ensemble=ensemble))


def fast_request():
    """The request of the "Fast" choice's result that precedes this one, or None."""
    return fast_request_for(request, fast_model(), width * height / 1e6)


def kept_fast():
    kept = st.session_state.get(FAST_KEPT)
    return kept if kept is not None and kept["request"] == fast_request() else None


def fast_preview(place):
    """The fast result that precedes the chosen model's, run now (its progress in `place`)
    unless kept; None where none does."""
    quick_request, kept = fast_request(), kept_fast()
    if quick_request is None or kept is not None:
        return kept
    # An earlier photo's goes first (72 MB at 24 MP). The fast model is loaded for this
    # run alone: two interpreters' buffers held at once took a 24 MP photo from 1,308 to
    # 1,545 MB on the server.
    st.session_state.pop(FAST_KEPT, None)
    bar = place.progress(0.0, text="A fast preview first…")
    quick = run_request(quick_request, pixels, load_runtime(quick_request.model), bit_depth=picture.bit_depth,
                        estimate=estimated_level(picture_key, pixels),
                        progress=lambda done, total: bar.progress(done / total, text=f"A fast preview first… tile "
                                                                                      f"{done} of {total}"))
    note_rate(quick_request.model, quick.megapixels_per_second)
    kept = {"request": quick_request, "seconds": quick.seconds, "before": overview(quick.noisy)[0],
            "after": overview(quick.denoised)[0], "denoised": quick.denoised}
    del quick
    st.session_state[FAST_KEPT] = kept
    return kept


def show_fast(slot, kept, status):
    """The fast result in `slot`, with its download; `status` says what comes of the chosen model."""
    with slot.container():
        st.caption(f"A fast preview ({short_label(kept['request'].model)}, {kept['seconds']:.1f} s); {status}.")
        comparison_slider(kept["before"], kept["after"], after_label="fast preview", element_id="fast-cmp")
        st.download_button("Download this fast result (PNG)", lambda: encode_image(
            to_float(kept["denoised"]), "PNG", alpha=picture.alpha, icc_profile=picture.icc_profile,
            exif=picture.exif), file_name=f"{Path(source_name).stem}_fast.png", mime="image/png",
            key="download_fast", on_click="ignore")


def run(progress, phase):
    estimate = None if request.demo else estimated_level(picture_key, pixels)
    return run_request(request, pixels, model, bit_depth=picture.bit_depth, estimate=estimate, progress=progress,
                       phase=phase)


settled = st.session_state.get(request.settled_key)
result = cached_result(request)
stop = stopped_run(request) if result is None else None
show = plan(request, cached=result is not None, stopped=stop is not None, settled=settled)
if holds(show) and hold(settled if show is Show.PREVIEW else None, stop):
    show = plan(request, cached=False, stopped=False, settled=settled, whole_asked=True)
# While a new strength is previewed, the whole photo shown is the last strength's.
previewing = show is Show.PREVIEW
if previewing:
    strength_preview()
    result = cached_result(replace(request, strength=settled))
    if result is None:
        st.stop()
    st.divider()
    st.subheader(f"The whole photo, at strength {settled:.1f}")
elif show is Show.STOPPED:
    kept = kept_fast()
    if kept is not None:
        show_fast(st.empty(), kept, f"the last result, since {short_label(name)} was stopped")
    else:
        picture_at_once("not denoised")
    st.stop()
if result is None:
    # The bar and its Stop above the picture, where the first screen shows them.
    progress_place = st.empty()
    slot = picture_at_once(f"denoising, {expected_wait()}")
    kept = fast_preview(progress_place)
    if kept is not None:
        show_fast(slot, kept, f"{short_label(name)}, the model chosen, follows: {expected_wait()}")
    result = cached_run(request, run, start="Starting…", unit="tile", place=progress_place,
                        step=lambda done, total: f"Denoising… tile {done} of {total}")
    note_rate(name, result.megapixels_per_second * (DIHEDRAL if ensemble else 1))
    st.session_state.pop(FAST_KEPT, None)
    slot.empty()
    if not request.demo:
        st.session_state[request.settled_key] = strength

st.caption(f"{source_name}: {width}×{height} pixels, {result.megapixels:.1f} MP. Time: "
           + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in result.phases.items()))

shown = {"noisy": result.noisy, "denoised": result.denoised}
if result.clean is not None:
    shown["clean"] = result.clean


def crops_at(center, size):
    crops = {label: crop(image, *center, size) for label, image in shown.items()}
    return crops["noisy"], crops["denoised"], "denoised"


def whole_photo_views():
    """The before/after of the whole photo, at the top, where the strength preview is shown instead."""
    views = {label: overview(image) for label, image in shown.items()}
    factor = views["noisy"][1]
    if factor > 1:
        st.caption(f"Overview at 1/{factor} scale; the 1:1 zoom below shows the real pixels.")
    comparison_slider(views["noisy"][0], views["denoised"][0])
    return views, factor


def zoom_and_views(views, factor):
    """The zoom, then every image whole and what the model removed."""
    center, size, scale = zoom_section("Zoom", views["noisy"][0], crops_at)
    if "clean" in shown:
        clean_crop = crop(shown["clean"], *center, size)
        st.image(for_display(magnify(clean_crop, scale)), caption=f"clean, {scale}:1", output_format="PNG",
                 width=clean_crop.shape[1] * scale)
    columns = st.columns(len(views))
    for column, (label, (image, _)) in zip(columns, views.items()):
        column.image(for_display(image), caption=label if factor == 1 else f"{label} (shown at 1/{factor})",
                     output_format="PNG", width="stretch")
    st.subheader("What the model removed")
    residual = residual_view(views["noisy"][0], views["denoised"][0])
    st.image(for_display(residual), caption="noisy − denoised, amplified 4× around mid-gray",
             output_format="PNG", width="stretch")


# The picture first: the before/after, then its numbers and downloads.
if not previewing:
    views, factor = whole_photo_views()
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
                           "photo alone; on each of four real cameras left out of its calibration it read within "
                           "15% of the true level (median of the camera's photos).")
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
    zoom_and_views(views, factor)
