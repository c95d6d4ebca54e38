"""The Denoise page's decisions, without Streamlit: what a request shows and runs,
given what is cached, what was stopped and the strength the whole photo was last
denoised at; how large a strength's preview of the photo is; whether a fast result
comes first; the wait to expect; and the names of the session keys the page keeps.
`pages/denoise.py` lays out what these say."""

import math
from dataclasses import replace
from enum import StrEnum

# The session keys: where the strength the whole photo was last denoised at is kept
# (one a picture, model and ensemble), where the fast result that precedes a slower
# model is kept, and the prefixes of what a new upload forgets.
SETTLED_PREFIX = "settled_strength_"
# The fast result: its request, seconds, overviews and denoised pixels (3 bytes a pixel,
# not a whole Result), kept until the chosen model's result exists, as the last result
# to show after a Stop.
FAST_KEPT = "_fast_preview"
FRESH_ON_UPLOAD = ("upload_mode", "strength_", SETTLED_PREFIX, "zoom_")

# A strength's preview of the photo is sized to take about this long at the model's
# speed measured here, so that with the zoom's it shows within about a second: 0.31 s
# for dncnn_real_int8 at 640 px on a 2-core AVX-512 VNNI machine, 2.2 s for RIDNet.
PREVIEW_SECONDS = 0.4
PREVIEW_SIDES = (320, 640, 1200)  # the smallest, the one used before a model is timed here, the overview's
# From this size a slower model is preceded by the "Fast" choice's result on the whole
# photo, so that neither the first denoised picture nor the first download waits for it.
FAST_PREVIEW_MEGAPIXELS = 2.0


class Show(StrEnum):
    """What the page shows for a request."""
    RESULT = "result"    # the cached result of this request
    PREVIEW = "preview"  # the new strength on a copy and the zoom; the whole photo stays at the last one
    STOPPED = "stopped"  # where the run stopped, and the last result kept
    RUN = "run"          # run the whole photo now (a fast result first, where one comes first)


def plan(request, *, cached: bool, stopped: bool, settled: float | None, whole_asked: bool = False) -> Show:
    """What `request` shows: its result where `cached`; else a run when the person asked
    for the whole photo; else a preview of a new strength (`request.previews(settled)`);
    else where a run `stopped`; else a run.

    Examples
    --------
    >>> from denoiser.service import DenoiseRequest
    >>> request = DenoiseRequest("photo", "dncnn_real_int8", strength=6.0)
    >>> plan(request, cached=False, stopped=False, settled=4.0)
    <Show.PREVIEW: 'preview'>
    >>> plan(request, cached=False, stopped=False, settled=4.0, whole_asked=True)
    <Show.RUN: 'run'>
    """
    if cached:
        return Show.RESULT
    if whole_asked:
        return Show.RUN
    if request.previews(settled):
        return Show.PREVIEW
    return Show.STOPPED if stopped else Show.RUN


def holds(show: Show) -> bool:
    """Whether `show` waits for the person's "Denoise the whole photo" instead of running."""
    return show in (Show.PREVIEW, Show.STOPPED)


def preview_side(width: int, height: int, seconds_per_megapixel: float | None) -> int:
    """The longest side of a strength's preview of a `width` x `height` photo: sized to
    take PREVIEW_SECONDS at the model's measured speed, between the smallest and the
    overview's side (PREVIEW_SIDES[1] before the model was timed here).

    Examples
    --------
    >>> preview_side(4000, 3000, None), preview_side(4000, 3000, 0.4), preview_side(4000, 3000, 100.0)
    (640, 1154, 320)
    """
    if seconds_per_megapixel is None:
        return PREVIEW_SIDES[1]
    scale = math.sqrt(PREVIEW_SECONDS / seconds_per_megapixel / (width * height / 1e6))
    return int(min(max(max(width, height) * scale, PREVIEW_SIDES[0]), PREVIEW_SIDES[2]))


def fast_request(request, fast_model: str | None, megapixels: float):
    """The request of the fast result that precedes `request`'s, or None: only for a
    photo that is already noisy, from FAST_PREVIEW_MEGAPIXELS, with another model."""
    if request.demo or fast_model in (None, request.model) or megapixels < FAST_PREVIEW_MEGAPIXELS:
        return None
    return replace(request, model=fast_model, ensemble=False)


def expected_wait(seconds: float | None) -> str:
    """The wait for a run, in words."""
    return f"about {seconds:.0f} s on this server" if seconds is not None else "the first run here times it"
