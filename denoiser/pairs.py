"""Real noisy/clean photo pairs in one folder, paired by name.

A pair is two files whose names differ only in a token that marks the noisy
shot and the clean reference: `scene_Real.JPG` and `scene_mean.JPG` (PolyU),
`scene_noisy.png` and `scene_clean.png`, `scene_NOISY.png` and `scene_GT.png`
(SIDD). The scene is the name without the token.
"""

import re
from pathlib import Path

from .errors import DenoiserError
from .io import IMAGE_SUFFIXES

TOKENS = (("real", "mean"), ("noisy", "clean"), ("noisy", "gt"))


def camera_key(name):
    """A camera's name in lower-case letters and digits only: PolyU writes one camera
    both `Nikon800_` and `Nikon_800_`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def camera_of(scene):
    """The camera a scene came from: its name less the last `_part` (`Canon5D2_bag`)."""
    return camera_key(scene.rsplit("_", 1)[0])


def scenes_of_camera(pairs, camera):
    """The scenes of `pairs` taken with `camera` (any spelling `camera_key` folds).

    Raises
    ------
    DenoiserError
        When no scene is of that camera.
    """
    scenes = [scene for scene in pairs if camera_of(scene) == camera_key(camera)]
    if not scenes:
        cameras = sorted({camera_of(scene) for scene in pairs})
        raise DenoiserError(f"no scenes of camera {camera!r}; the pairs' cameras are {', '.join(cameras)}")
    return scenes


def _split(stem):
    """(scene, role) of a file stem, role 'noisy' or 'clean', or None."""
    for noisy, clean in TOKENS:
        for role, token in (("noisy", noisy), ("clean", clean)):
            match = re.fullmatch(rf"(.+?)[_\-. ]?{token}", stem, flags=re.IGNORECASE)
            if match:
                return match.group(1), role
    return None


def pair_files(folder):
    """Scene name -> (noisy path, clean path), sorted by scene, for every complete pair."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DenoiserError(f"not a folder of image pairs: {folder}")
    found = {}
    for path in sorted(folder.iterdir()):
        split = _split(path.stem) if path.suffix.lower() in IMAGE_SUFFIXES else None
        if split:
            found.setdefault(split[0], {})[split[1]] = path
    pairs = {scene: (roles["noisy"], roles["clean"]) for scene, roles in sorted(found.items()) if len(roles) == 2}
    if not pairs:
        raise DenoiserError(f"no noisy/clean pairs in {folder} (names like scene_noisy.png and scene_clean.png)")
    return pairs
