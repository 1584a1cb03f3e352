"""`face-keypoints serve` without a browser: what it serves and with which headers, the
URLs it prints, https (a client that never finishes its handshake stalls nobody), IPv6,
requests that must not crash it (a NUL in a path, a client that leaves mid-download), and
the one-line errors for a bad model, port or certificate, or missing npm packages."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from browser import in_ci, serving
from conftest import cli_command

from face_keypoints.errors import BadInput
from face_keypoints.resolve import resolve_model
from face_keypoints.runtime import tracker
from face_keypoints.schemes import get_scheme
from face_keypoints.serve import litert_folder, make_server, npm_command, web_folder


@pytest.fixture(scope="module")
def npm_packages() -> None:
    try:
        litert_folder()
    except BadInput as err:
        if in_ci():
            pytest.fail(f"the web tests must run in CI: {err}")
        pytest.skip(str(err))


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, Message, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, b""


def test_the_server_sends_the_page_the_model_and_isolation_headers(npm_packages) -> None:
    fp16 = resolve_model("default:fp16").path
    with serving("default") as url:
        code, headers, body = _get(url)
        assert code == 200 and b'<script type="importmap">' in body
        # cross-origin isolation: SharedArrayBuffer, so LiteRT.js's threaded WASM
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert _get(url + "model/landmarks.tflite")[2] == fp16.read_bytes()
        card = json.loads(_get(url + "model/model.json")[2])
        assert card == json.loads((fp16.parent / "model.json").read_text(encoding="utf-8"))
        settings = json.loads(_get(url + "model/page.json")[2])
        ibug = get_scheme("ibug68")
        assert settings["schemes"]["ibug68"]["contours"] == [list(c) for c in ibug.contours]
        # what aligned crops level and tracking keeps by, as Python's
        assert settings["schemes"]["ibug68"]["pupils"] == [list(g) for g in ibug.pupils]
        assert settings["tracking"]["shrink_limit"] == tracker.SHRINK_LIMIT
        assert settings["tracking"]["min_tracking_confidence"] == \
            tracker.MIN_TRACKING_CONFIDENCE
        assert settings["model"]["file"] == fp16.name
        code, headers, _ = _get(url + "litert/core/wasm/litert_wasm_internal.wasm")
        assert code == 200 and headers["Content-Type"] == "application/wasm"
        for outside in ("%2e%2e/serve.py", "js/", "model/", "nothing.js",
                        "litert/%2e%2e/%2e%2e/serve.py",
                        "node_modules/@litertjs/core/dist/index.js"):
            assert _get(url + outside)[0] == 404, outside


def test_serve_prints_where_to_open_the_page_and_serves_there(npm_packages) -> None:
    process = subprocess.Popen([*cli_command(), "serve", "--host", "127.0.0.1", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert first.startswith("serving model default (") and "_fp16.tflite" in first
        url, where = second.split(maxsplit=1)
        assert url.startswith("http://localhost:") and where.strip() == "(this machine only)"
        assert _get(url)[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and its key (PEM)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate to test https with")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@contextlib.contextmanager
def _running(server) -> Iterator[None]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_serve_over_https_with_a_certificate(npm_packages, certificate) -> None:
    cert, key = certificate
    server = make_server("default", "127.0.0.1", 0, cert=cert, key=key)
    with _running(server):
        (url, _), = server.urls()
        assert url.startswith("https://localhost:")
        trusting = ssl.create_default_context(cafile=str(cert))
        assert _get(url, trusting)[0] == 200


def test_an_idle_connection_does_not_stall_https(npm_packages, certificate) -> None:
    """A device that opens a TCP connection to the https port and sends nothing (no TLS
    handshake) must not keep the page from anyone else: a second client is served
    within 2 s while the idle socket is held."""
    cert, key = certificate
    server = make_server("default", "127.0.0.1", 0, cert=cert, key=key)
    port = server.server_address[1]
    trusting = ssl.create_default_context(cafile=str(cert))
    with _running(server), socket.create_connection(("127.0.0.1", port)), \
            urllib.request.urlopen(f"https://localhost:{port}/", timeout=2,
                                   context=trusting) as response:
        assert response.status == 200


def test_serve_listens_on_ipv6(npm_packages) -> None:
    try:
        server = make_server("default", "::1", 0)
    except BadInput as err:
        if "::1" not in str(err):
            raise
        pytest.skip(f"no IPv6 loopback on this machine: {err}")
    with _running(server):
        (url, where), = server.urls()
        assert url.startswith("http://localhost:") and where == "this machine only"
        port = server.server_address[1]
        assert _get(f"http://[::1]:{port}/")[0] == 200


def test_a_nul_in_a_path_is_not_found(npm_packages) -> None:
    with serving("default") as url:
        for path in ("js/main.js%00", "%00", "js/%00/main.js", "model/%00"):
            assert _get(url + path)[0] == 404, path
        assert _get(url + "js/main.js")[0] == 200


def test_a_client_leaving_mid_download_leaves_no_traceback(npm_packages) -> None:
    """A reload while the page downloads LiteRT.js's WASM (9 MB) drops the connection
    mid-reply: the server goes on serving and says nothing about it."""
    process = subprocess.Popen([*cli_command(), "serve", "--host", "127.0.0.1", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()
        url = process.stdout.readline().split()[0]
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                client.sendall(b"GET /litert/core/wasm/"
                               b"litert_wasm_internal.wasm HTTP/1.1\r\nHost: x\r\n\r\n")
                assert client.recv(4096).startswith(b"HTTP/1.0 200")
                # close with a reset, as a browser abandoning the download does
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert _get(url)[0] == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "Traceback" not in err and "Error" not in err, err


@pytest.mark.parametrize("problem", ["no model", "no model.json", "unloadable model",
                                     "cert alone", "port 70000", "port -5"])
def test_serve_refuses_a_bad_model_port_or_certificate_in_one_line(npm_packages, run_cli,
                                                                  tmp_path: Path,
                                                                  problem: str) -> None:
    args = {"no model": ["--model", tmp_path / "absent"],
            "no model.json": ["--model", tmp_path],
            "unloadable model": ["--model", tmp_path],
            "cert alone": ["--cert", tmp_path / "cert.pem"],
            "port 70000": ["--port", "70000"],
            "port -5": ["--port", "-5"]}[problem]
    fp16 = resolve_model("default:fp16").path
    if problem == "no model.json":
        shutil.copy(fp16, tmp_path)
    if problem == "unloadable model":  # model.json names it, but it is cut short (its
        # sha256 no longer matches the card's, which is checked before LiteRT loads it)
        shutil.copy(fp16.parent / "model.json", tmp_path)
        (tmp_path / fp16.name).write_bytes(fp16.read_bytes()[:4096])
    result = run_cli("serve", "--host", "127.0.0.1", "--port", "0", *args)
    assert result.code == 2 and result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith("face-keypoints serve: error: ")
    assert {"no model": f"{tmp_path / 'absent'}: no such model",
            "no model.json": f"{tmp_path}: no model in this folder",
            "unloadable model": "(sha256 differs)",
            "cert alone": "--cert and --key go together",
            "port 70000": "--port 70000: a TCP port is 0 to 65535",
            "port -5": "--port -5: a TCP port is 0 to 65535"}[problem] in line


def test_missing_npm_packages_are_one_line_naming_the_command(tmp_path: Path) -> None:
    web = tmp_path / "web"
    shutil.copytree(web_folder(), web,
                    ignore=shutil.ignore_patterns("node_modules", "litert"))
    with pytest.raises(BadInput) as caught:
        litert_folder(web)
    message = str(caught.value)
    assert "\n" not in message and f"`{npm_command(web)}`" in message
    assert npm_command(web) == f"npm ci --prefix {web}"


def test_predict_help_says_the_precision_it_runs_and_the_page_its_own(npm_packages) -> None:
    """`predict` runs the file timed fastest on the CPU it runs on, the page the fp16
    file: predict's --help says both, and page.json tells the page which precision it
    runs, for its JSON."""
    help_text = " ".join(subprocess.run([*cli_command(), "predict", "--help"],
                                        capture_output=True, text=True,
                                        check=True).stdout.split())
    assert "fastest on this CPU" in help_text
    assert "default:fp16 is what serve's page runs" in help_text
    with serving("default") as url:
        settings = json.loads(_get(url + "model/page.json")[2])
    assert settings["model"]["precision"] == "fp16"
