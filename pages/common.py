"""Widgets and cached resources that several pages share."""

import io

import streamlit as st
from streamlit.runtime.scriptrunner import StopException

from denoiser.catalog import (
    PHOTO_CHOICES, available_models, comparison_default, counterpart, default_for, default_reason, fast_photo_model,
    load_runtime, model_for_noise, model_title, photo_choices, read_manifest, short_title,
)
from denoiser.catalog import model_card as catalog_model_card
from denoiser.engine import DIHEDRAL
from denoiser.errors import DenoiserError, ImageError
from denoiser.io import IMAGE_SUFFIXES, READ_FORMAT_WORDS, load_image, max_pixels_from_environment
from denoiser.noise import NOISE_TYPES
from denoiser.runtimes import RuntimeKind, keras_device
from denoiser.speed import measured_speed
from denoiser.service import SAMPLES, ResultCache, check_picture, load_sample, photo_level

APP_MARK = "_navigation_ready"
# Every choice is kept for the whole browser session: a visit to another page and back
# finds the photo, mode, model, strength and zoom as they were.
KEPT = "session"

UPLOAD_TYPES = sorted(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
NOISE_LABELS = {kind: noise_type.title for kind, noise_type in NOISE_TYPES.items()}
DEFAULT_LEVEL_RANGE = (0.0, 50.0)


def max_pixels():
    """Larger uploads are refused before decoding, a guard against decompression bombs."""
    try:
        return max_pixels_from_environment()
    except ImageError as exc:
        st.error(f"The server is set up wrongly: {exc}")
        st.stop()


def require_app():
    """Sends a visitor through app.py when a page runs without it.

    Streamlit runs a page script on its own, with its legacy pages/ navigation, when a
    page's URL is the first one a fresh server sees; app.py then never runs.
    """
    if not st.session_state.get(APP_MARK):
        st.switch_page("app.py")


@st.cache_resource(show_spinner="Loading the model…")
def runtime(name):
    """One runtime per model per server process; LiteRT calls are serialized by its lock."""
    return load_runtime(name)


@st.cache_resource
def result_cache():
    return ResultCache()


def cached_result(key):
    """The result `cached_run` holds for `key`, or None."""
    return result_cache().get(key)


@st.cache_resource
def _rates_here():
    """MP/s of each model in this server's own runs, the newest kept: what a wait is
    estimated from before `denoiser models` has timed a model here."""
    return {}


def note_rate(name, rate):
    """Keeps `rate` (MP/s, for one pass) as `name`'s speed on this server."""
    _rates_here()[name] = rate


def expected_seconds(name, megapixels, *, ensemble=False):
    """How long `name` should take on `megapixels` here (eight passes with `ensemble`):
    from this server's own runs, else from `denoiser models`' timing; None when neither
    has timed it."""
    rate = _rates_here().get(name) or speed_known(name)
    return None if not rate else megapixels / rate * (DIHEDRAL if ensemble else 1)


# The run under way, or the last one stopped: {"key", "done", "total", "stopped"}. The run
# writes into this dict itself, not through st.session_state: once Streamlit's own Stop
# is pressed, every session-state access raises StopException, so the stop could not
# be noted there. The rerun that follows a Stop reads it to say so, instead of starting
# the run again.
RUN_BOARD = "_run_board"


def stopped_run(key):
    """(done, total) of the run for `key` if it was stopped, by its own Stop button or
    by Streamlit's, and not asked for again since; else None."""
    board = st.session_state.get(RUN_BOARD)
    if board is None or not board["stopped"] or board["key"] != key:
        return None
    return board["done"], board["total"]


def forget_stop():
    st.session_state.pop(RUN_BOARD, None)


def _note_stop(key):
    """The Stop button's callback, run before the rerun that its click starts."""
    board = st.session_state.get(RUN_BOARD)
    if board is None or board["key"] != key:
        board = st.session_state[RUN_BOARD] = {"key": key, "done": 0, "total": 0}
    board["stopped"] = True


def stop_note(stop, unit):
    done, total = stop
    return f"Stopped after {done} of {total} {unit}s." if total else "Stopped before the first result."


def cached_run(key, run, *, start, step, unit="step", place=None):
    """`run(progress, phase)`'s result for `key`: from this server's cache, or computed now
    under a progress bar whose text is `start`, then each phase's name, then
    `step(done, total)`, with a Stop button. A DenoiserError stops the page with its
    message. After a Stop, the page says where it stopped (in `unit`s) and offers to
    run again rather than starting by itself. The bar and the button are drawn in
    `place` (an `st.empty()`), where given, else here."""
    cache = result_cache()
    value = cache.get(key)
    if value is not None:
        return value
    stop = stopped_run(key)
    if stop is not None:
        notice = st.empty()
        with notice.container():
            st.warning(stop_note(stop, unit))
            again = st.button("Run again", type="primary", key="run_again")
        if not again:
            st.stop()
        notice.empty()
    board = st.session_state[RUN_BOARD] = {"key": key, "done": 0, "total": 0, "stopped": False}
    holder = place if place is not None else st.empty()
    with holder.container():
        bar = st.progress(0.0, text=start)
        # A click ends this run at its next progress step (Streamlit reruns the page),
        # and the rerun finds the stop noted by the callback.
        st.button("Stop this run", key="stop_run", on_click=_note_stop, args=(key,))

    def show(fraction, text):
        try:
            bar.progress(fraction, text=text)
        except StopException:
            # Streamlit's own Stop ends the script at this call.
            board["stopped"] = True
            raise

    def progress(done, total):
        board["done"], board["total"] = done, total
        show(done / total, step(done, total))

    def phase(name):
        show(0.0, f"{name.capitalize()}…")

    try:
        value = run(progress, phase)
    except DenoiserError as exc:
        holder.empty()
        st.error(str(exc))
        st.stop()
    forget_stop()
    holder.empty()
    cache.put(key, value)
    return value


@st.cache_data
def manifest():
    return read_manifest()


@st.cache_data
def model_names(purpose="gaussian"):
    """The models a person can pick, the default for `purpose` first."""
    return available_models(purpose=purpose)


@st.cache_data
def sample(label):
    return load_sample(label)


@st.cache_resource
def device_name():
    return keras_device()


def model_label(name):
    return model_title(name, manifest())


def short_label(name):
    """The model's name where space is short: chips, legends, captions."""
    return short_title(name, manifest())


@st.cache_data
def default_comparison(real_photo=False):
    return comparison_default(real_photo=real_photo)


def legend_below(figure):
    """A Plotly figure with its legend under the plot, so that on a phone the legend
    does not take the plot's width (a 390-px screen left it 50-60 px)."""
    figure.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.25, "xanchor": "left", "x": 0,
                                 "title": None},
                         margin={"l": 10, "r": 10})
    return figure


def warn_real_photo_model_on_added_noise(name, kind):
    """Says so when a model made for camera noise is given the demo's other noises."""
    if kind != "camera" and manifest().get(name, {}).get("purpose") == "real_photo":
        st.caption(f"{short_label(name)} is made for camera noise; on {NOISE_LABELS[kind].lower()} noise it "
                   "removes less than the model made for it.")


def warn_outside_training(name, kind, level):
    """Says so when Gaussian noise of `level` lies outside the levels the model was trained on."""
    low, high = manifest().get(name, {}).get("sigma_range", (None, None))
    if kind == "gaussian" and low is not None and not low <= level <= high:
        st.warning(f"{model_label(name)} was trained on noise levels {low:g} to {high:g}; at {level:g} it removes "
                   "less than it could, and a classical filter may do better.")


def model_picker(key="model", label="Model", purpose="gaussian", default=None):
    """The model select box, opening on `default`, the default for `purpose` first; the
    caption under it says why the default is the default."""
    names = model_names(purpose)
    # Set through the session state, never as a changing `index`: a widget whose
    # parameters change is a new widget to the browser, which then resets it.
    if default in names and st.session_state.get(key) not in names:
        st.session_state[key] = default
    name = st.selectbox(label, names, format_func=model_label, key=key, persist_state=KEPT)
    why = default_reason(purpose)
    if name == default_for(purpose) and why:
        st.caption(f"Why this model: {why}.")
    return name


@st.cache_data
def short_list():
    return photo_choices()


@st.cache_data
def fast_model():
    return fast_photo_model()


def photo_model_picker(key="model_real"):
    """The model for a photo that is already noisy: a few choices named by purpose
    (`catalog.PHOTO_CHOICES`), or with "All models" every model; the caption says why
    the choice is what it is."""
    choices = short_list()
    everything = st.toggle("All models", key=f"{key}_all", persist_state=KEPT,
                           help="Every installed model and filter, not only the choices named by purpose.")
    labels = {name: label for label, name in choices.items()}
    names = model_names("real_photo") if everything else list(choices.values())
    if st.session_state.get(key) not in names:
        st.session_state[key] = names[0]
    # The sidebar cuts long labels: the short list shows its purpose names, the caption the model.
    name = st.selectbox("Model", names, key=key, persist_state=KEPT,
                        format_func=lambda n: labels[n] if n in labels and not everything else model_label(n))
    # The classical filter is a choice too, with no manifest default to give a reason.
    choice = PHOTO_CHOICES.get(labels.get(name, ""))
    why = default_reason(choice) if choice else None
    if why:
        st.caption(f"{short_label(name)}. Why this model: {why}.")
    return name


def demo_model_picker(kind):
    """The model select box of the demo, opening on the model made for noise `kind`
    (`catalog.model_for_noise`); each noise type keeps the person's own choice."""
    picked, why = model_for_noise(kind)
    # Streamlit forgets a widget's value while it is not shown, so the choice per noise type is kept here.
    chosen = st.session_state.setdefault("demo_model_by_noise", {})
    name = chosen[kind] = model_picker(key=f"model_{kind}", default=chosen.get(kind, picked))
    if name == picked:
        st.caption(f"Picked for this noise type: {why}.")
    return name


@st.cache_data(show_spinner="Estimating the noise…")
def estimated_level(key, _pixels):
    return photo_level(_pixels)


def strength_control(name, pixels, key):
    """The noise level the model removes, defaulting to the photo's estimate; None for
    models that take no level (the Gaussian networks are blind)."""
    model = runtime(name)
    estimate = estimated_level(key, pixels)
    if not (model.level_map or model.kind == RuntimeKind.CLASSICAL):
        st.caption(f"Estimated noise level: **{estimate:.1f}**. This model is blind: it takes no strength. "
                   "The real-photo models do.")
        return None
    low, high = manifest().get(name, {}).get("sigma_range", DEFAULT_LEVEL_RANGE)
    default = float(min(max(round(estimate, 1), low), high))
    level = st.slider("Strength (the noise level to remove)", float(low), float(high), default, 0.1,
                      key=f"strength_{name}_{key}", persist_state=KEPT,
                      help="Starts at the level estimated from the photo. Lower keeps more texture; higher smooths more.")
    note = " (the slider's end)" if default != round(estimate, 1) else ""
    if min(pixels.shape[:2]) < RELIABLE_ESTIMATE_SIDE:
        note += f"; a photo under {RELIABLE_ESTIMATE_SIDE} pixels on a side gives no reliable estimate"
    st.caption(f"Estimated from the photo: **{estimate:.1f}**{note}")
    return level


# The estimate measures 16x16 blocks and keeps the flattest fifth: a smaller photo has
# too few blocks for it (an 8x8 upload of random values read 177).
RELIABLE_ESTIMATE_SIDE = 64


def speed_known(name):
    """MP/s on this server's CPU where `denoiser models` (or an earlier page) timed it
    here; None otherwise. Nothing is timed: a page never waits for a measurement."""
    known = measured_speed(name, measure=False)
    return known[0] if known else None


def model_card(name):
    """The model's facts, and its speed on this server where it is known."""
    lines = catalog_model_card(name, manifest())
    known = speed_known(name)
    if known is not None:
        lines.append(f"CPU: {known:.2f} MP/s measured on this server")
    st.caption("  \n".join(lines))


@st.cache_data
def model_for(name, channels):
    return counterpart(name, channels)


def model_for_image(name, picture):
    """The model to run on this picture: a gray picture goes to the model's gray
    counterpart where its manifest entry names one (`catalog.counterpart`)."""
    used = model_for(name, picture.channels)
    if used != name:
        st.info(f"Gray image: running **{model_label(used)}**, the gray model of the same kind. "
                "Colour models made for added noise leave the noise of gray images almost untouched.")
    return used


def note_colour_models_on_gray(picture, names):
    """Comparisons run each model as chosen, so say why colour models score low on gray images."""
    entries = [manifest().get(name, {}) for name in names]
    if picture.channels == 1 and any(entry.get("gray_counterpart") for entry in entries):
        st.caption("A gray image: colour models made for added noise run on it as chosen, and leave its noise "
                   "almost untouched. The gray models are the ones made for it.")


@st.cache_resource(max_entries=2, show_spinner="Reading the photo…")
def read_upload(data, limit, name):
    """An upload, decoded once rather than on every rerun (a 12 MP PNG takes seconds);
    its errors name the file `name`."""
    upload = io.BytesIO(data)
    upload.name = name
    return check_picture(load_image(upload, max_pixels=limit))


def kept_upload(key, fresh=()):
    """(name, bytes) of the photo uploaded under `key`, or None.

    Streamlit empties an uploader when its page is left, so the photo is kept in the
    session and comes back with the page; the person's own "×" on the uploader drops
    it. A new upload starts fresh: the session's choices whose keys begin with one of
    `fresh` (the mode, the strength of the last photo) are forgotten, so that even the
    same photo uploaded again opens as a first upload does."""
    store, widget = f"{key}_kept", f"{key}_upload"
    returning = widget not in st.session_state
    uploaded = st.file_uploader(f"Photo ({READ_FORMAT_WORDS})", type=UPLOAD_TYPES, key=widget)
    kept = st.session_state.get(store)
    if uploaded is not None:
        if kept is None or kept["id"] != uploaded.file_id:
            for name in [name for name in st.session_state if str(name).startswith(tuple(fresh))]:
                del st.session_state[name]
            kept = st.session_state[store] = {"id": uploaded.file_id, "name": uploaded.name,
                                              "data": uploaded.getvalue()}
    elif kept is not None and returning:
        st.caption(f"Still working on **{kept['name']}**; upload another photo to replace it.")
    else:
        st.session_state.pop(store, None)
        return None
    return kept["name"], kept["data"]


def image_input(key="input", fresh=()):
    """A sample or an upload, as a Picture; bad uploads stop the page with an error.
    `fresh` names the choices that a new upload forgets (`kept_upload`)."""
    source = st.radio("Image", ["Sample", "Upload"], horizontal=True, key=f"{key}_source", persist_state=KEPT)
    if source == "Sample":
        label = st.selectbox("Sample image", list(SAMPLES), key=f"{key}_sample", persist_state=KEPT)
        return sample(label), label
    upload = kept_upload(key, fresh)
    if upload is None:
        st.info("Upload a photo to begin, or choose a sample.")
        st.stop()
    name, data = upload
    try:
        picture = read_upload(data, max_pixels(), name)
    except DenoiserError as exc:
        message = str(exc)
        st.error(f"Cannot use {message if message.startswith(name) else f'{name}: {message}'}")
        st.stop()
    for note in picture.notes:
        st.info(f"{name}: {note}.")
    return picture, name


def note_upload_taken_as_clean(key):
    """On the pages that add noise, says that an uploaded photo is taken as clean."""
    if st.session_state.get(f"{key}_source") == "Upload":
        st.info("Your photo is taken as clean here: noise is added to it, and each model is scored against your "
                "photo as it was. To denoise the photo itself, use Denoise with “My photo is already noisy”.")


def noise_controls(key="noise"):
    kind = st.selectbox("Noise type", list(NOISE_LABELS), format_func=NOISE_LABELS.get, key=f"{key}_kind",
                        persist_state=KEPT)
    label = ("Camera ISO, in hundreds (16 is ISO 1600)" if kind == "camera"
             else "Noise level (sigma on the 0–255 scale)")
    level = st.slider(label, 0, 75, int(NOISE_TYPES[kind].demo_level),
                      key=f"{key}_level" + ("_camera" if kind == "camera" else ""), persist_state=KEPT)
    seed = st.number_input("Seed", 0, 2**31 - 1, 0, key=f"{key}_seed", persist_state=KEPT)
    return kind, level, int(seed)

