"""The Dockerfile's promises, read from the file (CI has no Docker engine to build it)."""

from .conftest import ROOT


def test_the_image_runs_train_py_as_a_user_with_its_folders_as_volumes():
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.12-slim-bookworm"
    assert "USER ganzoo" in lines
    copied = {ln.split()[-2] for ln in lines if ln.startswith("COPY --chown=ganzoo")}
    assert {"conf", "ganzoo", "train.py"} <= copied  # what train.py needs at run time
    assert 'VOLUME ["/app/outputs", "/app/multirun", "/data", "/cache"]' in lines
    assert lines[-2:] == ['ENTRYPOINT ["uv", "run", "--no-sync", "train.py"]', "CMD []"]


def test_the_build_context_leaves_out_the_environment_and_the_runs():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv/", "outputs/", "multirun/", "data/", ".git/"} <= set(ignored)
