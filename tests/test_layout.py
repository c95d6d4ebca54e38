"""The package's layout: the library never reaches into the workshop, imports form no
circle, and the app's install carries nothing for tests or training."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "denoiser"


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """The denoiser modules that `path` imports anywhere, function bodies included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("denoiser")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("denoiser"):
                target = node.module
            else:
                continue
            # `from . import metrics` imports the module denoiser.metrics.
            modules = {f"{target}.{alias.name}" for alias in node.names}
            found |= {m for m in modules if (ROOT / (m.replace(".", "/") + ".py")).exists()} or {target}
    return found - {name}


def import_graph():
    return {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def test_the_library_and_the_app_never_import_the_workshop():
    graph = import_graph()
    for module, imported in graph.items():
        if not module.startswith("denoiser.training"):
            reached = {m for m in imported if m.startswith("denoiser.training")}
            assert not reached or module == "denoiser.cli" and reached == {"denoiser.training.commands"}, module
    for page in [ROOT / "app.py", *(ROOT / "pages").glob("*.py")]:
        assert "denoiser.training" not in page.read_text(), page


def test_the_architectures_import_nothing_above_them():
    for module, imported in import_graph().items():
        if module.startswith("denoiser.architectures"):
            assert all(m.startswith("denoiser.architectures") or m == "denoiser.errors" for m in imported), module


def test_imports_form_no_circle():
    graph = import_graph()
    state = {}

    def visit(module, path):
        if state.get(module) == "open":
            raise AssertionError(" -> ".join(path + [module]))
        if state.get(module) == "done":
            return
        state[module] = "open"
        for other in graph.get(module, ()):
            # A package's __init__ is not an edge back to its modules.
            if other in graph:
                visit(other, path + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])


@pytest.mark.slow
def test_denoising_from_the_command_line_loads_no_workshop_module(tmp_path, astronaut):
    from denoiser.io import save_image

    photo = tmp_path / "photo.png"
    save_image(astronaut[:64, :64], photo)
    script = (
        "import sys\n"
        "from denoiser.cli import main\n"
        f"for model in ('dncnn_color', 'dncnn_real_int8', 'nlm'):\n"
        f"    assert main(['denoise', {str(photo)!r}, '--model', model, '--quiet', '--overwrite',\n"
        f"                 '-o', {str(tmp_path)!r} + '/out_' + model + '.png']) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith('denoiser.training')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_the_app_loads_no_workshop_module():
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "app = AppTest.from_file('app.py', default_timeout=240).run()\n"
        "assert not app.exception, app.exception\n"
        "print(sorted(m for m in sys.modules if m.startswith('denoiser.training')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def requirement_names(path, *, follow=True):
    """The packages a requirements file names, and with `follow` those of its `-r` includes."""
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r ") and follow:
            names += requirement_names(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            names.append(line.split("==")[0].split("[")[0].lower())
    return names


def test_the_apps_install_leaves_out_tests_and_training():
    app = requirement_names(ROOT / "requirements.txt")
    dev = requirement_names(ROOT / "requirements-dev.txt", follow=False)
    assert not {"jax", "pytest", "hypothesis", "playwright"} & set(app)
    assert {"jax", "pytest", "hypothesis", "playwright"} <= set(dev) and not set(app) & set(dev)
    first = next(line for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#"))
    assert first == "-r requirements.txt"
    assert "requirements-dev.txt" in (ROOT / ".ci" / "run").read_text()


def test_the_gpu_install_is_the_apps_with_tensorflows_cuda_build():
    app = requirement_names(ROOT / "requirements.txt")
    gpu = requirement_names(ROOT / "requirements-gpu.txt")
    assert set(app) - {"tensorflow-cpu"} == set(gpu) - {"tensorflow"}
    assert "tensorflow[and-cuda]==2.21.0" in (ROOT / "requirements-gpu.txt").read_text()
    pins = {line.split("==")[0]: line.split("==")[1] for file in ("requirements.txt", "requirements-gpu.txt")
            for line in (ROOT / file).read_text().splitlines() if line.startswith("tensorflow")}
    assert pins["tensorflow-cpu"] == pins["tensorflow[and-cuda]"]


@pytest.mark.slow
def test_the_librarys_public_api_type_checks():
    """mypy over the modules pyproject.toml names: their signatures are annotated, and agree."""
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", "/dev/null"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    import tomllib

    named = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert f"no issues found in {len(named)} source files" in done.stdout
