"""Coverage-guided fuzzing of the upload path, by hand (not part of ``make test``).

Runs the same checks as ``tests/test_fuzz_ingest.py`` (no 500, a refusal leaves no file
and no row, an accepted file is kept byte for byte and the worker finishes it) on inputs
that atheris mutates from real files, for as long as you let it::

    .venv/bin/pip install atheris
    .venv/bin/python tests/fuzz_ingest_atheris.py -atheris_runs=2000
    .venv/bin/python tests/fuzz_ingest_atheris.py -max_total_time=3600   # an hour

A failing input is written to ``crash-<sha1>`` in the working folder; run the script with
that file as its argument to replay it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from picup import create_app, worker
    from picup.media import sniff  # noqa: F401  (instrumented: the first bytes decide the type)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import Api, make_settings  # noqa: E402
from tests.test_fuzz_ingest import SEEDS, check_one  # noqa: E402

_folder = tempfile.TemporaryDirectory(prefix="picup-fuzz-")
_settings = make_settings(Path(_folder.name) / "data")
_app = create_app(_settings)
_mom = Api(_app)
_mom.post("/api/v1/setup", json={"username": "mom", "password": "correct horse"})
_mom.sign_in("mom")
_worker = worker.Worker(_settings, _app.extensions["picup"].store, processes=1)
_worker.register()


def one_input(data: bytes) -> None:
    with _app.app_context():
        check_one(_mom, _settings, data)


def main() -> None:
    corpus = Path(_folder.name) / "corpus"
    corpus.mkdir()
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    args = sys.argv + ([str(corpus)] if not any(not a.startswith("-") for a in sys.argv[1:]) else [])
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
