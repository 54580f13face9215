"""DOWNLOAD of MAKE_SWARM_USER_CONTENT: fetch one http(s) URI, `file://` URI or absolute host
path (a file, or a directory copied as a tree) to a destination path, within a size limit,
writing under a temporary name so that a failure leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from swarmlearning.swop.content.common import _CHUNK, DEFAULT_MAX_BYTES, ContentError, _within

MAX_REDIRECTS = 10

Verify = bool | str | os.PathLike[str] | ssl.SSLContext


def _classify(uri: str) -> tuple[str, str]:
    """("http", uri) for http(s) URIs, ("file", path) for file:// URIs and absolute paths."""
    if not isinstance(uri, str) or not uri.strip():
        raise ContentError(f"target {uri!r} is empty")
    if uri.startswith("/"):
        return "file", uri
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ContentError(f"{uri!r} names no host")
        return "http", uri
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ContentError(f"file URI {uri!r} names the remote host {parts.netloc!r}")
        path = url2pathname(parts.path)
        if not path.startswith("/"):
            raise ContentError(f"file URI {uri!r} does not name an absolute path")
        return "file", path
    if scheme:
        raise ContentError(f"unsupported scheme {scheme!r} in {uri!r} "
                           "(use http://, https://, file:// or an absolute path)")
    raise ContentError(f"{uri!r} is neither a URI (http://, https://, file://) nor an "
                       "absolute path")


def download(uri: str, dest: Path, *, timeout: float = 60, max_bytes: int = DEFAULT_MAX_BYTES,
             verify: Verify = True, max_redirects: int = MAX_REDIRECTS) -> Path:
    """Fetch `uri` to `dest` and return `dest`.

    http(s) is streamed through httpx with TLS verified (`verify`: False, a CA bundle file or
    directory, or an `ssl.SSLContext`), at most `max_redirects` redirects, `timeout` seconds
    per network operation, and the proxy variables of the environment. `file://` URIs and
    absolute paths copy a regular file, or a directory tree (symlinks copied as symlinks;
    `dest` must not exist yet). More than `max_bytes` is refused. A file is written to a
    temporary name beside `dest` and renamed into place, so a failure leaves nothing behind.
    """
    kind, where = _classify(uri)
    dest = Path(dest)
    if dest.is_dir():
        raise ContentError(f"destination {str(dest)!r} already exists as a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if kind == "http":
        _fetch_http(where, dest, timeout, max_bytes, verify, max_redirects)
    else:
        _copy_local(Path(where), dest, max_bytes)
    return dest


def _ssl_verify(verify: Verify) -> bool | ssl.SSLContext:
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    bundle = os.fspath(verify)
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    if os.path.isfile(bundle):
        return ssl.create_default_context(cafile=bundle)
    raise ContentError(f"CA bundle {bundle!r} does not exist")


def _fetch_http(uri: str, dest: Path, timeout: float, max_bytes: int, verify: Verify,
                max_redirects: int) -> None:
    context = _ssl_verify(verify)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, httpx.Client(
                timeout=timeout, verify=context, follow_redirects=True,
                max_redirects=max_redirects) as client, client.stream("GET", uri) as response:
            if response.status_code >= 400:
                raise ContentError(f"HTTP {response.status_code} "
                                   f"{response.reason_phrase} from {response.url}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ContentError(f"{uri} is {int(declared)} bytes, more than the limit of "
                                   f"{max_bytes} bytes")
            received = 0
            for chunk in response.iter_bytes(_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise ContentError(f"{uri} sent more than the limit of {max_bytes} bytes")
                out.write(chunk)
        os.replace(tmp, dest)
    except httpx.TooManyRedirects as exc:
        raise ContentError(f"more than {max_redirects} redirects fetching {uri}") from exc
    except httpx.HTTPError as exc:
        raise ContentError(f"fetching {uri} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _copy_local(source: Path, dest: Path, max_bytes: int) -> None:
    if not source.exists():
        raise ContentError(f"{str(source)!r} does not exist")
    if source.is_dir():
        real_source, real_dest = os.path.realpath(source), os.path.realpath(dest)
        if _within(real_dest, real_source):
            raise ContentError(f"cannot copy {str(source)!r} into itself ({str(dest)!r})")
        if os.path.lexists(dest):
            raise ContentError(f"destination {str(dest)!r} already exists")
        size = _tree_size(source)
        if size > max_bytes:
            raise ContentError(f"{str(source)!r} holds {size} bytes, more than the limit of "
                               f"{max_bytes} bytes")
        tmp = tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            shutil.copytree(source, tmp, symlinks=True, dirs_exist_ok=True)
            os.rename(tmp, dest)
        finally:
            if os.path.lexists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return
    if not source.is_file():
        raise ContentError(f"{str(source)!r} is neither a regular file nor a directory")
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            copied = 0
            while chunk := src.read(_CHUNK):
                copied += len(chunk)
                if copied > max_bytes:
                    raise ContentError(f"{str(source)!r} is more than the limit of "
                                       f"{max_bytes} bytes")
                out.write(chunk)
        shutil.copymode(source, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
