import os
import shutil
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from book import registry, runner  # noqa: E402
from book.contract import inventory as build_inventory  # noqa: E402


@pytest.fixture(scope="session")
def entries():
    return registry.load()[0]


@pytest.fixture(scope="session")
def figures():
    return registry.load()[1]


@pytest.fixture(scope="session")
def inventory(entries):
    return build_inventory(entries)


class PageRuns:
    """One scratch copy of the repository per page; blocks of a page run there in order."""

    def __init__(self):
        self.dirs: dict[str, Path] = {}
        self.done: dict[tuple[str, str], runner.Result] = {}

    def workdir(self, page: str) -> Path:
        if page not in self.dirs:
            self.dirs[page] = runner.scratch_copy()
        return self.dirs[page]

    def cleanup(self):
        for d in self.dirs.values():
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def page_runs():
    runs = PageRuns()
    yield runs
    runs.cleanup()


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The site as `make build` makes it (strict), once per session: (folder, build log)."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=registry.REPO, capture_output=True, text=True, timeout=900,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "BOOK_PUBLISH": ""},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-4000:]}"
    return out, log


@pytest.fixture
def http_stub():
    """Start stand-in HTTP servers on 127.0.0.1 (a handler class each); all stop at teardown."""
    servers = []

    def serve(handler) -> str:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield serve
    for srv in servers:
        srv.shutdown()
        srv.server_close()
