"""swarmlearning.swop.content: MAKE_SWARM_USER_CONTENT downloads and extractions, with a real
HTTP server on 127.0.0.1 and hand-built malicious archives."""

from __future__ import annotations

import io
import os
import socket
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from swarmlearning.swop.content.common import ContentError
from swarmlearning.swop.content.download import download
from swarmlearning.swop.content.extract import extract
from swarmlearning.swop.content.opslist import run_ops, volume_names

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def tree(root: Path) -> dict[str, object]:
    """Relative path -> file bytes, link text, or 'dir' for everything below `root`."""
    result: dict[str, object] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            key = str(path.relative_to(root))
            if path.is_symlink():
                result[key] = ("link", os.readlink(path))
            elif path.is_dir():
                result[key] = "dir"
            else:
                result[key] = path.read_bytes()
    return result


def all_paths(root: Path) -> set[str]:
    return {str(Path(d, n)) for d, dirs, files in os.walk(root) for n in dirs + files}


def build_tar(path: Path, mode: str, entries: list[tuple[str, str, bytes | str]]) -> Path:
    """entries: (name, kind, data-or-link) with kind in file, dir, symlink, hardlink, fifo, chr."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}
    with tarfile.open(path, mode) as archive:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            info.type = types[kind]
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind == "file":
                info.size = len(value)
                archive.addfile(info, io.BytesIO(value))
            else:
                if kind in ("symlink", "hardlink"):
                    info.linkname = value
                archive.addfile(info)
    return path


def build_zip(path: Path, entries: list[tuple[str, str, bytes | str]]) -> Path:
    """entries: (name, kind, data) with kind in file, dir, symlink, fifo."""
    modes = {"file": stat.S_IFREG | 0o644, "dir": stat.S_IFDIR | 0o755,
             "symlink": stat.S_IFLNK | 0o777, "fifo": stat.S_IFIFO | 0o644}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, kind, value in entries:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" and not name.endswith("/")
                                           else ""))
            info.create_system = 3
            info.external_attr = modes[kind] << 16
            archive.writestr(info, value if isinstance(value, bytes) else value.encode())
    return path


GOOD = [("pkg", "dir", b""), ("pkg/model.py", "file", b"print('hi')\n"),
        ("pkg/data/x.csv", "file", b"1,2\n"), ("pkg/link.py", "symlink", "model.py")]


# -- the HTTP server ---------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        payloads: dict[str, bytes] = self.server.payloads  # type: ignore[attr-defined]
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/file.bin")
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/unsized":  # no Content-Length: HTTP/1.0, the body ends at close
            self.send_response(200)
            self.end_headers()
            for _ in range(16):
                self.wfile.write(PAYLOAD)
        elif self.path in payloads:
            body = payloads[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch, tmp_path) -> Iterator[tuple[str, dict[str, bytes]]]:
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.payloads = {"/file.bin": PAYLOAD}  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", httpd.payloads  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# -- download ----------------------------------------------------------------------------------


def test_download_file_uri_and_absolute_path(tmp_path):
    src = tmp_path / "in dir" / "weights.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    out = download(src.as_uri(), tmp_path / "out" / "a.bin")   # file:///...in%20dir/...
    assert out == tmp_path / "out" / "a.bin"
    assert out.read_bytes() == PAYLOAD
    assert download(str(src), tmp_path / "out" / "b.bin").read_bytes() == PAYLOAD
    assert download(f"file://localhost{src}", tmp_path / "out" / "c.bin").read_bytes() == PAYLOAD
    assert sorted(os.listdir(tmp_path / "out")) == ["a.bin", "b.bin", "c.bin"]  # no temp files


def test_download_directory_tree(tmp_path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "w.bin").write_bytes(PAYLOAD)
    (src / "train.py").write_text("x = 1\n")
    os.symlink("train.py", src / "alias.py")
    out = download(f"file://{src}", tmp_path / "vol" / "model")
    assert tree(out) == tree(src)
    assert os.readlink(out / "alias.py") == "train.py"      # symlinks stay symlinks
    with pytest.raises(ContentError, match="already exists"):
        download(str(src), tmp_path / "vol" / "model")
    with pytest.raises(ContentError, match="into itself"):
        download(str(src), src / "copy")
    assert not (src / "copy").exists()


def test_download_missing_local_source(tmp_path):
    with pytest.raises(ContentError, match="nope.*does not exist"):
        download(str(tmp_path / "nope"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("uri, message", [
    ("ftp://example.org/x.tar", "unsupported scheme 'ftp'"),
    ("s3://bucket/key", "unsupported scheme 's3'"),
    ("relative/path.tar", "neither a URI"),
    ("file://otherhost/x", "remote host"),
])
def test_unsupported_targets(tmp_path, uri, message):
    with pytest.raises(ContentError, match=message):
        download(uri, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_http_download_and_redirect(server, tmp_path):
    base, _ = server
    assert download(f"{base}/file.bin", tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert download(f"{base}/redirect", tmp_path / "b.bin").read_bytes() == PAYLOAD
    assert download(f"{base}/unsized", tmp_path / "c.bin").read_bytes() == PAYLOAD * 16
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin", "c.bin"]


def test_http_errors_leave_nothing(server, tmp_path):
    base, _ = server
    with pytest.raises(ContentError, match="HTTP 404"):
        download(f"{base}/missing", tmp_path / "x")
    with pytest.raises(ContentError, match="more than 3 redirects"):
        download(f"{base}/loop", tmp_path / "x", max_redirects=3)
    with pytest.raises(ContentError, match="limit of 1000 bytes"):     # Content-Length
        download(f"{base}/file.bin", tmp_path / "x", max_bytes=1000)
    with pytest.raises(ContentError, match="more than the limit of 200000"):  # streamed
        download(f"{base}/unsized", tmp_path / "x", max_bytes=200_000)
    with pytest.raises(ContentError, match="CA bundle"):
        download(f"{base}/file.bin", tmp_path / "x", verify=str(tmp_path / "no-ca.pem"))
    assert os.listdir(tmp_path) == []                                  # no partial files


def test_http_connection_refused(server, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ContentError, match="ConnectError"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", timeout=5)
    assert os.listdir(tmp_path) == []


# -- extract -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_extract_tar_by_content(tmp_path, mode):
    archive = build_tar(tmp_path / "blob.bin", mode,
                        GOOD + [("pkg/copy.py", "hardlink", "pkg/model.py")])
    paths = extract(archive, tmp_path / "out")
    out = tmp_path / "out"
    assert paths == [out / "pkg", out / "pkg" / "model.py", out / "pkg" / "data" / "x.csv",
                     out / "pkg" / "link.py", out / "pkg" / "copy.py"]
    assert (out / "pkg" / "model.py").read_bytes() == b"print('hi')\n"
    assert (out / "pkg" / "data" / "x.csv").read_bytes() == b"1,2\n"
    assert os.readlink(out / "pkg" / "link.py") == "model.py"
    assert (out / "pkg" / "copy.py").read_bytes() == b"print('hi')\n"


def test_extract_zip_by_content(tmp_path):
    archive = build_zip(tmp_path / "blob.dat", GOOD)
    paths = extract(archive, tmp_path / "out")
    out = tmp_path / "out"
    assert len(paths) == 4
    assert (out / "pkg" / "model.py").read_bytes() == b"print('hi')\n"
    assert (out / "pkg" / "data" / "x.csv").read_bytes() == b"1,2\n"
    assert os.readlink(out / "pkg" / "link.py") == "model.py"


def test_extract_tar_with_dot_root_entry(tmp_path):
    archive = build_tar(tmp_path / "a.tgz", "w:gz", [(".", "dir", b""), ("./a.txt", "file", b"a")])
    assert extract(archive, tmp_path / "out") == [tmp_path / "out" / "a.txt"]


def test_extract_refuses_non_archives(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive at all" * 40)
    with pytest.raises(ContentError, match="not a tar .* or zip archive"):
        extract(junk, tmp_path / "out")
    with pytest.raises(ContentError, match="does not exist"):
        extract(tmp_path / "missing.tar", tmp_path / "out")
    assert not (tmp_path / "out").exists()


OK = ("ok.txt", "file", b"harmless, listed first")


@pytest.mark.parametrize("entries, culprit", [
    ([OK, ("../evil", "file", b"x")], "'../evil'.*'..'"),
    ([OK, ("a/../../evil", "file", b"x")], "'a/../../evil'"),
    ([OK, ("/abs/evil", "file", b"x")], "'/abs/evil'.*absolute"),
    ([OK, ("etc", "symlink", "/etc")], "'etc'.*symlink to '/etc'"),
    ([OK, ("up", "symlink", "../../etc")], "'up'.*outside"),
    ([OK, ("q", "symlink", "."), ("p", "symlink", "q/../x")], "'p'.*outside"),
    ([OK, ("d", "dir", b""), ("d/l", "symlink", "../..")], "'d/l'.*outside"),
    ([OK, ("l", "symlink", "sub"), ("l/x", "file", b"x")], "'l/x'.*below the symlink"),
    ([OK, ("h", "hardlink", "../outside.txt")], "hard link target of 'h'"),
    ([OK, ("h", "hardlink", "/etc/passwd")], "hard link target of 'h'.*absolute"),
    ([OK, ("h", "hardlink", "later.txt"), ("later.txt", "file", b"x")], "'h'.*no earlier file"),
    ([OK, ("pipe", "fifo", b"")], "'pipe' is a fifo"),
    ([OK, ("tty", "chr", b"")], "'tty' is a character device"),
    ([OK, ("x", "symlink", "ok.txt"), ("x", "file", b"x")], "'x' appears more than once"),
])
def test_malicious_tar_refused_before_writing(tmp_path, entries, culprit):
    archive = build_tar(tmp_path / "evil.tar.gz", "w:gz", entries)
    before = all_paths(tmp_path)
    with pytest.raises(ContentError, match=culprit):
        extract(archive, tmp_path / "vol" / "out")
    assert all_paths(tmp_path) == before                 # not even the destination was made


@pytest.mark.parametrize("entries, culprit", [
    ([OK, ("../evil", "file", b"x")], "'../evil'"),
    ([OK, ("/abs/evil", "file", b"x")], "'/abs/evil'.*absolute"),
    ([OK, ("etc", "symlink", "/etc")], "'etc'.*symlink to '/etc'"),
    ([OK, ("up", "symlink", "../x")], "'up'.*outside"),
    ([OK, ("pipe", "fifo", b"")], "'pipe' is a fifo"),
])
def test_malicious_zip_refused_before_writing(tmp_path, entries, culprit):
    archive = build_zip(tmp_path / "evil.zip", entries)
    before = all_paths(tmp_path)
    with pytest.raises(ContentError, match=culprit):
        extract(archive, tmp_path / "vol" / "out")
    assert all_paths(tmp_path) == before


def test_existing_symlink_in_destination_is_not_followed_out(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "vol"
    dest.mkdir()
    os.symlink(elsewhere, dest / "out")
    archive = build_tar(tmp_path / "a.tar", "w", [("out/x.txt", "file", b"x")])
    with pytest.raises(ContentError, match="'out/x.txt'.*existing symlink"):
        extract(archive, dest)
    link_archive = build_tar(tmp_path / "b.tar", "w", [("l", "symlink", "out/..")])
    with pytest.raises(ContentError, match="'l'.*outside"):   # out/.. is tmp_path on disk
        extract(link_archive, dest)
    assert os.listdir(elsewhere) == []


def test_extract_size_limit(tmp_path):
    archive = build_tar(tmp_path / "big.tar", "w", [("a", "file", PAYLOAD), ("b", "file", PAYLOAD)])
    with pytest.raises(ContentError, match="more than the limit of 150000"):
        extract(archive, tmp_path / "out", max_bytes=150_000)
    assert not (tmp_path / "out").exists()


# -- run_ops -----------------------------------------------------------------------------------


def test_run_ops_download_then_extract(server, tmp_path):
    base, payloads = server
    payloads["/pkg.tar.gz"] = build_tar(tmp_path / "pkg.tar.gz", "w:gz", GOOD).read_bytes()
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "swarmlearning-client.whl").write_bytes(b"wheel")
    zipped = build_zip(tmp_path / "extra.zip", [("extra/readme.txt", "file", b"read me")])
    volume = tmp_path / "volume"
    lines: list[str] = []
    run_ops([
        {"Operation": "DOWNLOAD", "Target": f"{base}/pkg.tar.gz",
         "Options": [{"Out": "dl/pkg.tar.gz"}]},
        {"Operation": "EXTRACT", "Target": "dl/pkg.tar.gz", "Options": [{"Out": "src"}]},
        {"Operation": "DOWNLOAD", "Target": lib.as_uri(), "Options": []},
        {"Operation": "EXTRACT", "Target": str(zipped), "Options": []},
        {"Operation": "EXTRACT", "Target": f"{base}/pkg.tar.gz", "Options": [{"Out": "again"}]},
        {"Operation": "download", "Target": f"{base}/file.bin", "Options": None},
    ], volume, log=lines.append)
    assert (volume / "src" / "pkg" / "model.py").read_bytes() == b"print('hi')\n"
    assert os.readlink(volume / "src" / "pkg" / "link.py") == "model.py"
    assert (volume / "lib" / "swarmlearning-client.whl").read_bytes() == b"wheel"
    assert (volume / "extra" / "readme.txt").read_bytes() == b"read me"
    assert (volume / "again" / "pkg" / "data" / "x.csv").read_bytes() == b"1,2\n"
    assert (volume / "file.bin").read_bytes() == PAYLOAD
    assert len(lines) == 6
    assert [line.split()[0] for line in lines] == [f"OpsList[{i}]" for i in range(6)]
    assert "-> dl/pkg.tar.gz" in lines[0] and "-> src (4 entries)" in lines[1]


@pytest.mark.parametrize("bad, message", [
    ({"Operation": "DOWNLOAD", "Target": "file:///x", "Options": [{"Out": "../x"}]},
     r"OpsList\[1\] DOWNLOAD 'file:///x': Out '../x' contains '..'"),
    ({"Operation": "EXTRACT", "Target": "a.tar", "Options": [{"Out": "/etc"}]},
     r"OpsList\[1\] EXTRACT 'a.tar': Out '/etc' is absolute"),
    ({"Operation": "EXTRACT", "Target": "../a.tar", "Options": []},
     r"OpsList\[1\] EXTRACT '../a.tar': Target"),
    ({"Operation": "COPY", "Target": "x", "Options": []}, r"OpsList\[1\]: unknown Operation"),
    ({"Operation": "DOWNLOAD", "Options": []}, r"OpsList\[1\]: missing Target"),
    ({"Operation": "DOWNLOAD", "Target": "ftp://h/x", "Options": []},
     r"OpsList\[1\] DOWNLOAD 'ftp://h/x': unsupported scheme"),
    ({"Operation": "DOWNLOAD", "Target": "https://h/", "Options": []},
     r"OpsList\[1\].*cannot derive a file name"),
    ({"Operation": "DOWNLOAD", "Target": "https://h/x", "Options": [{"Mode": "0644"}]},
     r"OpsList\[1\].*unknown option 'Mode'"),
    ("DOWNLOAD x", r"OpsList\[1\]: expected a mapping"),
])
def test_run_ops_refuses_bad_ops_before_running_any(tmp_path, bad, message):
    src = tmp_path / "src.txt"
    src.write_text("x")
    first = {"Operation": "DOWNLOAD", "Target": str(src), "Options": [{"Out": "first.txt"}]}
    with pytest.raises(ContentError, match=message):
        run_ops([first, bad], tmp_path / "volume", log=lambda line: None)
    assert not (tmp_path / "volume").exists()


def test_run_ops_runtime_failures_name_the_op(tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, volume / "escape")
    src = tmp_path / "src.txt"
    src.write_text("x")
    with pytest.raises(ContentError, match=r"OpsList\[0\] EXTRACT 'nope.tar.gz': no archive"):
        run_ops([{"Operation": "EXTRACT", "Target": "nope.tar.gz", "Options": []}], volume,
                log=lambda line: None)
    with pytest.raises(ContentError, match=r"OpsList\[0\] DOWNLOAD .*leaves the volume"):
        run_ops([{"Operation": "DOWNLOAD", "Target": str(src),
                  "Options": [{"Out": "escape/x.txt"}]}], volume, log=lambda line: None)
    assert os.listdir(outside) == []


@pytest.mark.parametrize("ops", [[], [{"Operation": "DOWNLOAD", "Target": "/x"}] * 21, "nope"])
def test_run_ops_count(tmp_path, ops):
    with pytest.raises(ContentError, match=r"OpsList must hold 1\.\.20 operations"):
        run_ops(ops, tmp_path / "v", log=lambda line: None)


def test_volume_names():
    assert volume_names("sl-cli-lib", "BUILDCONTENT", 3) == ["sl-cli-lib"]
    assert volume_names("mnist-data", "SWARMCONTENT", 3) == ["mnist-data-0", "mnist-data-1",
                                                             "mnist-data-2"]
    with pytest.raises(ContentError, match="ContentType 'OTHER'"):
        volume_names("x", "OTHER", 1)
    with pytest.raises(ContentError, match="at least one SL node"):
        volume_names("x", "SWARMCONTENT", 0)
