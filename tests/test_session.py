"""The Denoise page's decisions (`denoiser.session`), one case a row, without Streamlit."""

import pytest

from denoiser.service import DenoiseRequest
from denoiser.session import FAST_PREVIEW_MEGAPIXELS, PREVIEW_SIDES, Show, fast_request, holds, plan, preview_side

PHOTO = DenoiseRequest("photo", "dncnn_real_int8", strength=6.0)
DEMO = DenoiseRequest("sample", "dncnn_color_int8", noise="gaussian", level=25.0)


@pytest.mark.parametrize("request_, cached, stopped, settled, whole_asked, expected", [
    (PHOTO, True, False, 4.0, False, Show.RESULT),     # a cached result shows, whatever else
    (PHOTO, True, True, None, True, Show.RESULT),
    (PHOTO, False, False, None, False, Show.RUN),      # a photo's first strength runs the whole photo
    (PHOTO, False, False, 6.0, False, Show.RUN),       # the same strength again, not cached: run
    (PHOTO, False, False, 4.0, False, Show.PREVIEW),   # a new strength previews
    (PHOTO, False, True, 4.0, False, Show.PREVIEW),    # ... even after a Stop (the note stays)
    (PHOTO, False, True, None, False, Show.STOPPED),   # a stopped run waits for the button
    (PHOTO, False, True, None, True, Show.RUN),        # ... which runs it
    (PHOTO, False, False, 4.0, True, Show.RUN),
    (DEMO, False, False, 4.0, False, Show.RUN),        # the demo never previews
    (DEMO, False, True, None, False, Show.STOPPED),
])
def test_what_a_request_shows(request_, cached, stopped, settled, whole_asked, expected):
    assert plan(request_, cached=cached, stopped=stopped, settled=settled, whole_asked=whole_asked) is expected


def test_only_a_preview_and_a_stop_wait_for_the_button():
    assert [show for show in Show if holds(show)] == [Show.PREVIEW, Show.STOPPED]


@pytest.mark.parametrize("width, height, seconds_per_mp, expected", [
    (4000, 3000, None, PREVIEW_SIDES[1]),   # not timed here yet
    (4000, 3000, 0.4, 1154),                # 0.4 s for a 1 MP copy: 4000 * sqrt(1 / 12)
    (4000, 3000, 100.0, PREVIEW_SIDES[0]),  # a slow model: never under the smallest
    (400, 300, 0.01, PREVIEW_SIDES[2]),     # a fast one: never over the overview's side
])
def test_the_preview_is_sized_by_the_models_speed(width, height, seconds_per_mp, expected):
    assert preview_side(width, height, seconds_per_mp) == expected


@pytest.mark.parametrize("request_, fast, megapixels, expected_model", [
    (PHOTO, "unet_real_int8", FAST_PREVIEW_MEGAPIXELS, "unet_real_int8"),
    (PHOTO, "unet_real_int8", FAST_PREVIEW_MEGAPIXELS - 0.1, None),  # small photos need no fast result
    (PHOTO, "dncnn_real_int8", 12.0, None),                         # the chosen model is the fast one
    (PHOTO, None, 12.0, None),                                      # no fast model installed
    (DEMO, "unet_real_int8", 12.0, None),                           # the demo has none
])
def test_a_fast_result_comes_first_only_for_a_large_noisy_photo_and_a_slower_model(request_, fast, megapixels,
                                                                                     expected_model):
    found = fast_request(request_, fast, megapixels)
    assert (found.model if found else None) == expected_model
    if found:
        assert not found.ensemble and found.strength == request_.strength
