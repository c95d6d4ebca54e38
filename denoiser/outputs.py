"""Where the commands write, decided before any work: the inputs that files, folders
and globs name, and for each its output, by rules that never destroy a file the
command did not make (never an input, never an existing file without --overwrite,
never two inputs to one file, a folder that takes files). `denoise` (local and on
Ray), `add-noise` and `evaluate` plan through here."""

import fcntl
import glob
import os
from pathlib import Path

from .errors import DenoiserError

# What `denoise` adds to an input's name; its earlier outputs are known by it.
DENOISED_SUFFIX = "_denoised"


def expand_inputs(inputs, skip_suffix=None):
    """The files that `inputs` (files, folders, globs) name. From a folder or a glob,
    files whose name ends in `skip_suffix` are this command's earlier outputs: they
    are skipped, with a word; a file named on its own is always taken."""
    from .io import images_in

    files = []
    for item in inputs:
        if not str(item).strip():
            # Path("") is the current folder: an empty name must not take every image in it.
            raise DenoiserError("an empty input name: name a file, a folder or a glob")
        path = Path(item)
        if path.is_symlink() and not path.exists():
            raise DenoiserError(f"{item}: a link that leads nowhere (broken, or a loop)")
        if path.is_dir():
            found = images_in(path)
        elif path.exists():
            files.append(path)
            continue
        else:
            found = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not found:
                raise DenoiserError(f"{item}: no such file, folder or matching files")
        for match in found:
            if skip_suffix and match.stem.endswith(skip_suffix):
                print(f"skipping {match}: an earlier output (name it on its own to process it)")
            else:
                files.append(match)
    if not files:
        raise DenoiserError("no input images found")
    return files


def plan_outputs(files, output, *, suffix, fmt=None, overwrite=False, skip_existing=False):
    """(inputs, their output paths), checked before any work: a known format, never an
    input, no two inputs to one file, no existing file unless `overwrite`, and a
    folder that takes files. With `skip_existing`, an input whose output exists is
    finished work (outputs are written atomically) and is left out, with a word.
    Inputs from several folders keep their folders under an output folder."""
    from collections import Counter

    from .io import IMAGE_SUFFIXES, WRITE_FORMATS, format_for_path

    extension = WRITE_FORMATS[fmt] if fmt else ".png"
    folder = None
    if output is None:
        targets = [source.with_name(f"{source.stem}{suffix}{extension}") for source in files]
    else:
        output = Path(output)
        if len(files) > 1 and output.exists() and not output.is_dir():
            raise DenoiserError(f"--output {output} is a file, but there are {len(files)} inputs: name a folder")
        if len(files) > 1 and not output.exists() and output.suffix.lower() in IMAGE_SUFFIXES:
            raise DenoiserError(f"--output {output} names an image file, but there are {len(files)} inputs: "
                                "name a folder")
        if len(files) > 1 or output.is_dir() or (not output.exists() and not output.suffix):
            folder = output
            root = Path(os.path.commonpath([source.parent.resolve() for source in files]))
            targets = [output / source.parent.resolve().relative_to(root) / f"{source.stem}{suffix}{extension}"
                       for source in files]
        else:
            targets = [output]
    # Same-stem inputs (photo.jpg, photo.png) keep their suffix in the name.
    counts = Counter(targets)
    targets = [
        target.with_name(f"{source.stem}_{source.suffix.lstrip('.').lower()}{suffix}{extension}")
        if counts[target] > 1 else target
        for source, target in zip(files, targets)
    ]
    inputs = {resolve_links(source) for source in files}
    seen, kept = set(), []
    for source, target in zip(files, targets):
        check_name_length(target)
        if target.is_symlink() and not target.exists():
            raise DenoiserError(f"{target} is a link that leads nowhere: refusing to write through it")
        resolved = resolve_links(target)
        if resolved in seen:
            raise DenoiserError(f"two inputs would both be written to {target}")
        seen.add(resolved)
        if resolved in inputs:
            raise DenoiserError(f"{target} is an input: refusing to write over it; choose another --output")
        if target.exists() and not target.is_file():
            raise DenoiserError(f"{target} exists and is not a regular file")
        if target.exists() and not overwrite:
            if not skip_existing:
                raise DenoiserError(f"{target} already exists; add --overwrite to replace it")
            print(f"skipping {source}: {target} exists, finished earlier (add --overwrite to redo it)")
            continue
        named = format_for_path(target) if fmt is None or target.suffix else fmt
        if named != fmt and fmt is not None:
            raise DenoiserError(f"{target} names a {named} file, but --format is {fmt}: change one of them")
        kept.append((source, target))
    for parent in {target.parent for _, target in kept} | ({folder} if folder else set()):
        check_writable(parent)
    for target in targets:
        remove_stale_parts(target)
    return [source for source, _ in kept], [target for _, target in kept]


def check_name_length(target):
    """A DenoiserError, before any work, when `target`'s name or the temporary name it
    is written under first (`io.write_atomically`) is longer than its folder allows."""
    from .io import PART_EXTRA

    folder = target.parent if target.parent.is_dir() else Path(".")
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    length = len(os.fsencode(target.name)) + PART_EXTRA
    if length > limit:
        raise DenoiserError(f"{target.name[:40]}…: the output's name is too long ({length - PART_EXTRA} bytes; this "
                            f"folder takes {limit - PART_EXTRA} with the temporary name written first): shorten it")


def remove_stale_parts(target):
    """Removes what a killed write of `target` left: `io.write_atomically`'s hidden
    temporary files beside it. One that another run still writes is locked, and kept."""
    from .io import PART_PREFIX, PART_SUFFIX

    if not target.parent.is_dir():
        return
    for part in target.parent.glob(f"{glob.escape(PART_PREFIX + target.name)}.*{PART_SUFFIX}"):
        try:
            with open(part, "rb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                part.unlink(missing_ok=True)
        except (BlockingIOError, FileNotFoundError):
            continue


def check_summary(path):
    """`path`, if a summary CSV may be appended to it: a .csv name, and a regular file
    where it exists (never a photo, a folder, a link or a device)."""
    if path.suffix.lower() != ".csv":
        raise DenoiserError(f"--summary {path}: a summary is a CSV file; name it NAME.csv")
    _check_regular(path)
    if not path.parent.is_dir():
        raise DenoiserError(f"cannot write {path}: no folder {path.parent}")
    return path


def _check_regular(target):
    """A DenoiserError for a path that is a folder, a link, a device or a pipe: only a
    regular file, or none yet, may be written."""
    if target.is_dir():
        raise DenoiserError(f"{target} is a folder: name a file")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise DenoiserError(f"{target} is not a regular file (a link, a device or a pipe): name a new file")


def check_writable(folder):
    """Makes `folder` and proves it can hold a file. Raises DenoiserError when not."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise DenoiserError(f"cannot write in {folder}: {exc.strerror or exc}") from None


def resolve_links(path):
    """`path` made absolute through its links; a link loop is a DenoiserError."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:
        raise DenoiserError(f"{path}: cannot follow its links ({exc})") from None


def same_file(a, b):
    """Whether two paths are one file on disk (its device and inode): a bind mount, a
    hard link or a link makes two paths of one file, which comparing paths misses."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_single_output(target, inputs, *, overwrite=False):
    """`target` as a Path, if one file may be written there by the rules every write
    keeps: never onto one of `inputs` (compared as files on disk), never over an
    existing file without `overwrite`, only a regular file, in a folder that takes
    files. Raises DenoiserError before any work when not."""
    target = Path(target)
    for source in inputs:
        if same_file(target, source):
            raise DenoiserError(f"{target} is an input ({source}): refusing to write over it")
    _check_regular(target)
    if target.exists() and not overwrite:
        raise DenoiserError(f"{target} already exists; add --overwrite to replace it")
    if not target.parent.is_dir():
        raise DenoiserError(f"cannot write {target}: no folder {target.parent}")
    check_writable(target.parent)
    check_name_length(target)
    return target


def plan_tables(paths, input_folders, *, overwrite=False):
    """{kind: path} of the tables a command writes (`paths` maps a kind to a path or
    None), checked by the rules above before any work: never a file of
    `input_folders`, never an existing file without `overwrite`, never a folder, and a
    folder that exists and takes files."""
    inputs = [path for folder in input_folders if Path(folder).is_dir() for path in Path(folder).iterdir()]
    targets = {kind: Path(path) for kind, path in paths.items() if path}
    if len({resolve_links(target) for target in targets.values()}) < len(targets):
        raise DenoiserError(f"two tables would both be written to the same file: {', '.join(map(str, targets.values()))}")
    for target in targets.values():
        check_single_output(target, inputs, overwrite=overwrite)
    return targets
