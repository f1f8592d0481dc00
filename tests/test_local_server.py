"""`bench rate` and `bench view` started for real on 127.0.0.1, then sent what a hostile page or client
would send: forged Host and Origin headers, links out of the folder, bodies of 200 MB.

What the server did is read at the server: votes.jsonl (the only thing a request can change) and the
status of the answer; the big-body cases are raw sockets that never send most of what they declare,
so a server that waited for the whole body would never answer (and the test would time out).
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
from _report_runs import bench, make_run

from bench.arena.app import Arena, build_app
from bench.arena.votes import VOTES_FILE, read_votes
from bench.emulators.serve import running
from bench.local_server import MAX_BODY_BYTES, AllowedHost, confined_file
from bench.view.app import create_app

SECRET = "root:x:0:0:not-for-the-browser\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("local_server_runs"), "rated")


def _fresh(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns(VOTES_FILE))
    return dst


@contextmanager
def _server(kind: str, folder: Path, hosts: tuple[AllowedHost, ...] = ()) -> Iterator[str]:
    app = (
        build_app(Arena.open(folder, "ana", seed=0), hosts) if kind == "rate" else create_app([folder], hosts)
    )
    with running(app) as url:
        yield url


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def _raw(port: int, head: str, parts: tuple[bytes, ...] = ()) -> tuple[int, bytes]:
    """Send a request head and some body bytes over a plain socket; the status and the whole answer
    (the servers close the connection after a refusal, so it is read to the end)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode())
        try:
            for part in parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close once it has refused: the answer is already on its way
        answer = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), answer[:200]
    return int(status_line.split()[1]), answer


def test_rate_never_serves_a_file_outside_the_folder(run: Path, tmp_path: Path) -> None:
    folder = _fresh(run, tmp_path)
    secret = tmp_path / "passwd"
    secret.write_text(SECRET)
    # Every image of one target becomes a symlink to a file outside the folder (like one to /etc/passwd).
    records = pd.read_parquet(folder / "records.parquet")
    fast = records[(records["target"] == "local:shapes-fast") & (records["status"] == "ok")]
    for rel in fast["image_path"]:
        (folder / rel).unlink()
        (folder / rel).symlink_to(secret)
    arena = Arena.open(folder, "ana", seed=0)
    with (
        running(build_app(arena)) as url,
        httpx.Client(base_url=url, timeout=10, headers={"origin": url}) as c,
    ):
        statuses = []
        for _ in range(6):
            d = c.get("/api/next").json()
            for side in ("left", "right"):
                r = c.get(d[side])
                assert SECRET not in r.text
                statuses.append(r.status_code)
            assert c.post("/api/vote", json={"token": d["token"], "choice": "tie"}).status_code == 200
    # Each pair has one linked image (refused) and one real one (served).
    assert statuses.count(404) == 6 and statuses.count(200) == 6

    # A records.parquet naming a path that climbs out of the folder: refused the same way.
    records.loc[records["status"] == "ok", "image_path"] = "../passwd"
    records.to_parquet(folder / "records.parquet", index=False)
    arena = Arena.open(folder, "ana", seed=1)
    with running(build_app(arena)) as url, httpx.Client(base_url=url, timeout=10) as c:
        d = c.get("/api/next").json()
        assert c.get(d["left"]).status_code == c.get(d["right"]).status_code == 404


def test_confined_file_follows_links_and_refuses_what_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(b"png")
    (tmp_path / "outside.png").write_bytes(b"nope")
    (root / "images" / "inner-link.png").symlink_to(root / "images" / "a.png")
    (root / "images" / "outer-link.png").symlink_to(tmp_path / "outside.png")
    (root / "loop").symlink_to(root / "loop")
    assert confined_file(root, "images/a.png") == (root / "images" / "a.png").resolve()
    assert confined_file(root, "images/inner-link.png") == (root / "images" / "a.png").resolve()
    for bad in ("images/outer-link.png", "../outside.png", str(tmp_path / "outside.png"), "images", "loop"):
        assert confined_file(root, bad) is None, bad


@pytest.mark.parametrize("kind", ["rate", "view"])
def test_only_the_servers_own_host_names_are_answered(kind: str, run: Path, tmp_path: Path) -> None:
    folder = _fresh(run, tmp_path)
    tunnel = AllowedHost.parse("tunnel.test:9000")
    with _server(kind, folder, (tunnel,)) as url, httpx.Client(base_url=url, timeout=10) as c:
        port = _port(url)
        page = "/api/next" if kind == "rate" else "/api/records"
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", "tunnel.test:9000"):
            assert c.get(page, headers={"host": host}).status_code == 200, host
        # A DNS-rebinding page's requests name its own host; other ports and names are not ours either.
        for host in (
            f"evil.example:{port}",
            "evil.example",
            f"127.0.0.1:{port + 1}",
            "localhost",
            "tunnel.test:9001",
        ):
            r = c.get(page, headers={"host": host})
            assert r.status_code == 421 and "prompt" not in r.text, host
        status, _ = _raw(port, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n")  # no Host at all
        assert status in (400, 421)


def test_votes_only_from_the_arenas_own_page(run: Path, tmp_path: Path) -> None:
    folder = _fresh(run, tmp_path)
    with _server("rate", folder) as url, httpx.Client(base_url=url, timeout=10) as c:
        port = _port(url)
        token = c.get("/api/next").json()["token"]
        vote = {"token": token, "choice": "left"}
        for origin in (
            "http://evil.example",
            f"http://evil.example:{port}",
            "null",
            f"http://127.0.0.1:{port + 1}",
        ):
            assert c.post("/api/vote", json=vote, headers={"origin": origin}).status_code == 403, origin
        assert c.post("/api/vote", json=vote).status_code == 403  # no Origin: not from our page
        # A forged Host with a matching Origin (a rebinding page) stops at the Host check.
        forged = {"host": f"evil.example:{port}", "origin": f"http://evil.example:{port}"}
        assert c.post("/api/vote", json=vote, headers=forged).status_code == 421
        # A cross-site page may not read the next pair either.
        assert c.get("/api/next", headers={"origin": "http://evil.example"}).status_code == 403
        assert not (folder / VOTES_FILE).exists()  # nothing above reached the vote log
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            host = urlsplit(origin).netloc
            r = c.post("/api/vote", json=vote, headers={"origin": origin, "host": host})
            assert r.status_code == 200, origin
            vote = {"token": r.json()["token"], "choice": "right"}
    assert [v.choice for v in read_votes(folder / VOTES_FILE)] == ["left", "right"]


@pytest.mark.parametrize("kind", ["rate", "view"])
def test_request_bodies_are_capped_while_reading(kind: str, run: Path, tmp_path: Path) -> None:
    folder = _fresh(run, tmp_path)
    with _server(kind, folder) as url:
        port = _port(url)
        own = (
            f"Host: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        )
        path = "/api/vote" if kind == "rate" else "/api/records"
        # 200 MB declared, none of it sent: only a server that never waits for the body can answer.
        status, answer = _raw(port, f"POST {path} HTTP/1.1\r\n{own}Content-Length: {200 * 2**20}\r\n\r\n")
        assert status == 413 and b"too large" in answer
        # No length, chunked: 4 x 8 KiB chunks (twice the cap) and no final chunk; refused mid-body.
        chunk = b"2000\r\n" + b"x" * 0x2000 + b"\r\n"
        status, _ = _raw(
            port, f"POST {path} HTTP/1.1\r\n{own}Transfer-Encoding: chunked\r\n\r\n", (chunk,) * 4
        )
        assert status == 413
        status, _ = _raw(port, f"POST {path} HTTP/1.1\r\n{own}Content-Length: nonsense\r\n\r\n")
        assert status in (400, 413)
        # Still up, and a body under the cap still reaches the app.
        with httpx.Client(base_url=url, timeout=10, headers={"origin": url}) as c:
            assert c.get("/").status_code == 200
            if kind == "rate":
                token = c.get("/api/next").json()["token"]
                padded = {"token": token, "choice": "tie", "rater": "ana", "pad": "x" * (MAX_BODY_BYTES // 2)}
                assert c.post("/api/vote", json=padded).status_code == 200
    if kind == "rate":
        assert len(read_votes(folder / VOTES_FILE)) == 1


@pytest.mark.parametrize("command", ["rate", "view"])
def test_a_bad_host_option_is_one_line_exit_2(command: str, run: Path) -> None:
    proc = bench(command, str(run), "--port", "0", "--host", "http://evil.example/")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--host 'http://evil.example/'" in proc.stderr and "NAME:PORT" in proc.stderr
