"""Extracts shared between machines through object storage: what one run builds, another run
updates or publishes.

With `VTP_EXTRACTS_URL` set (any fsspec URL; `s3://bucket/prefix` through s3fs), a run that
builds a table's extract pulls the shared copy before it updates it and pushes what it wrote
(`build_extract`), and a run that sends a whole extract to Tableau pulls it first
(`publish_extract`). The local folder, `$VTP_HOME/extracts`, is then a cache of the shared
copies. Unset, the local folder is all there is, as on one machine.

Under the URL each extract has

    <name>.json             the pointer: the hash and size of the current content, the moment
                            of the state store it covers (`built_up_to`), the run that pushed it
    <name>/<sha256>.hyper   the contents, each under its own hash, never rewritten

Why a pointer to contents named by their hash:
- "Newer" is decided by content, not by clocks or by what a store reports: the local copy is
  current exactly when its hash is the pointer's. A hash is the same on every machine and in
  every store (an S3 ETag is no content hash for a multipart upload, and fsspec backends differ
  in the versions and times they report).
- A file and the moment it covers change together, in one small write. A publish sends a file
  with the moment that file covers, never with a later one (the next incremental delivery would
  then skip the changes between), and an update starts from exactly what its base holds.
- Nothing half-written is visible under a name a reader uses: a content is complete before a
  pointer names it (an object store shows an object once its upload has completed; on a file
  system a content is reached only through a pointer written after it), and a pointer is written
  under a temporary name and moved into place.
- A build pushes before it notes its moment in the state store: a crash between writing the file
  and pushing it leaves the shared copy and the state store as they were, and the next build, on
  any machine, updates the shared copy from the moment it covers. Nothing is lost.

A push keeps the content it replaces (a reader may be downloading it) and removes older ones.
Two builds of one table at the same time are not made safe here, as they were not on one machine
either: Dagster's automation starts no second run of an asset while one is running.

Beside each local file a one-line record (`.<name>.hyper.sha256`) keeps its hash with its size,
modification time and inode, so that a file is hashed once, not at every comparison.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

from fsspec.core import split_protocol, url_to_fs

from visma_tableau_pipeline.settings import S3_PROTOCOLS, ConfigError, Settings

log = logging.getLogger(__name__)

LOCAL_PROTOCOLS = ("file", "local")
PULL_ATTEMPTS = 3  # pointer reads when each content named is replaced (and removed) while it is downloaded
CREDENTIALS_HINT = ("check the credentials the store reads (for s3://: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "or AWS_PROFILE) and that they may list, read, write and delete under it")


class ExtractStoreError(RuntimeError):
    """The shared extracts could not be read or written. The message names the store, the
    extract and what to do; it never holds a credential."""


class ExtractStoreNotFound(ExtractStoreError):
    """The bucket (or folder) VTP_EXTRACTS_URL names does not exist."""


class ExtractStoreAccessDenied(ExtractStoreError):
    """The store refused the credentials, or what they may do."""


class ExtractNotShared(ExtractStoreError):
    """An extract that must be sent whole has no shared copy: it was never built and pushed."""


@dataclass(frozen=True)
class SharedExtract:
    """One version of an extract as the store names it (its pointer)."""

    name: str
    sha256: str
    size: int
    built_up_to: datetime | None  # every record the state store held before this moment is in it
    run_id: str  # the run that pushed it
    pushed_at: datetime

    def to_json(self) -> bytes:
        return json.dumps({
            "name": self.name, "sha256": self.sha256, "size": self.size,
            "built_up_to": self.built_up_to.isoformat() if self.built_up_to else None,
            "run_id": self.run_id, "pushed_at": self.pushed_at.isoformat(),
        }, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SharedExtract:
        fields = json.loads(data)
        return cls(fields["name"], fields["sha256"], int(fields["size"]),
                   datetime.fromisoformat(fields["built_up_to"]) if fields["built_up_to"] else None,
                   fields["run_id"], datetime.fromisoformat(fields["pushed_at"]))


class ExtractStore:
    """The shared copies of the extracts under one fsspec URL (see the module docstring)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.shown = shown_url(self.url)
        protocol = split_protocol(self.url)[0] or "file"
        self._local = protocol in LOCAL_PROTOCOLS
        options = {**(storage_options or {}), **({"auto_mkdir": True} if self._local else {})}
        try:
            # its own client: credentials are read now, not from an instance another store made
            self._fs, self._root = url_to_fs(self.url, skip_instance_cache=True, **options)
        except ImportError as error:
            package = "s3fs" if protocol in S3_PROTOCOLS else f"the fsspec package for {protocol}://"
            raise ConfigError(f"VTP_EXTRACTS_URL is {self.shown}: install {package} to use it ({error})") from None
        except ValueError as error:
            raise ConfigError(f"VTP_EXTRACTS_URL is {self.shown}, which fsspec cannot open: {error}") from None
        self._container_checked = False

    def current(self, name: str) -> SharedExtract | None:
        """The shared version of extract `name`, or None when none was pushed yet."""
        with self._errors(name, "reading"):
            try:
                data = self._fs.cat_file(self._pointer(name))
            except FileNotFoundError:
                self._check_container(name)
                return None
        try:
            return SharedExtract.from_json(data)
        except (ValueError, KeyError, TypeError) as error:
            raise ExtractStoreError(f"reading extract {name} at {self.shown}: its pointer {name}.json is not one "
                                    f"this project wrote ({error}); remove it, then build {name} again") from None

    def pull(self, name: str, path: Path) -> SharedExtract | None:
        """Make the local file `path` the shared version of `name` (downloaded only when the
        local file is missing or another content); None, and the file left alone, when nothing
        is shared yet."""
        for _ in range(PULL_ATTEMPTS):
            shared = self.current(name)
            if shared is None or local_sha256(path) == shared.sha256:
                return shared
            if self._download(shared, path):
                return shared
        raise ExtractStoreError(f"reading extract {name} at {self.shown}: it was replaced {PULL_ATTEMPTS} times "
                                "while being downloaded; run again")

    def pull_existing(self, name: str, path: Path) -> SharedExtract:
        """`pull`, for an extract that must exist (one to send whole to Tableau)."""
        shared = self.pull(name, path)
        if shared is None:
            raise ExtractNotShared(f"extract {name} at {self.shown}: no run has shared it yet; build it first "
                                   f"(materialize the table {name}, or run `vtp sync`), then publish again")
        return shared

    def push(self, name: str, path: Path, built_up_to: datetime | None = None, run_id: str = "") -> SharedExtract:
        """Share the local file `path` as the current version of `name`, covering the state
        store up to `built_up_to` (None: not known, so the next build builds it whole)."""
        started = time.perf_counter()
        digest = local_sha256(path)
        if digest is None:
            raise FileNotFoundError(errno.ENOENT, "there is no extract to share", str(path))
        previous = self.current(name)
        shared = SharedExtract(name, digest, path.stat().st_size, built_up_to, run_id, datetime.now(UTC))
        with self._errors(name, "writing"):
            if previous is None or previous.sha256 != digest:
                self._fs.put_file(str(path), self._content(name, digest))
            moving = f"{self._pointer(name)}.{uuid4().hex}.tmp"
            self._fs.pipe_file(moving, shared.to_json())
            self._fs.mv(moving, self._pointer(name))
        self._remove_older(name, {digest, previous.sha256 if previous else digest})
        log.info("shared %s (%d bytes, up to %s) at %s in %.2f s", name, shared.size, built_up_to, self.shown,
                 time.perf_counter() - started)
        return shared

    def _pointer(self, name: str) -> str:
        return f"{self._root}/{name}.json"

    def _content(self, name: str, digest: str) -> str:
        return f"{self._root}/{name}/{digest}.hyper"

    def _download(self, shared: SharedExtract, path: Path) -> bool:
        """Replace `path` by the shared content; False when that content is gone (a newer push
        removed it since its pointer was read)."""
        started = time.perf_counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".pulled")
        os.close(handle)
        partial = Path(name)
        try:
            with self._errors(shared.name, "reading"):
                try:
                    self._fs.get_file(self._content(shared.name, shared.sha256), str(partial))
                except FileNotFoundError:
                    return False
            if (digest := _sha256(partial)) != shared.sha256:
                raise ExtractStoreError(f"reading extract {shared.name} at {self.shown}: the content downloaded "
                                        f"has hash {digest}, its pointer says {shared.sha256}; build "
                                        f"{shared.name} again to share it afresh")
            os.replace(partial, path)
            _remember(path, digest)
        finally:
            partial.unlink(missing_ok=True)
        log.info("pulled %s (%d bytes, up to %s, pushed by run %s) from %s in %.2f s", shared.name, shared.size,
                 shared.built_up_to, shared.run_id, self.shown, time.perf_counter() - started)
        return True

    def _remove_older(self, name: str, keep: set[str]) -> None:
        """Remove the contents no pointer names any more but `keep`. The extract is shared
        already: a failure here is warned about, not raised."""
        folder = f"{self._root}/{name}"
        try:
            with self._errors(name, "removing older contents of"):
                self._fs.invalidate_cache(folder)
                try:
                    contents = self._fs.ls(folder, detail=False)
                except FileNotFoundError:  # nothing there
                    return
                finally:
                    self._fs.invalidate_cache(folder)
                older = [item for item in contents if item.rsplit("/", 1)[-1].removesuffix(".hyper") not in keep]
                if older:
                    self._fs.rm(older)
        except ExtractStoreError as error:
            log.warning("%s (they take room, nothing else)", error)

    def _check_container(self, name: str) -> None:
        """A missing pointer is an extract not shared yet, unless the bucket (or, on a file
        system, the folder) itself is missing: that is a setting to correct."""
        if self._container_checked:
            return
        container = self._root if self._local else self._root.split("/", 1)[0]
        try:
            self._fs.info(container)
        except FileNotFoundError:
            raise ExtractStoreNotFound(f"reading extract {name} at {self.shown}: the "
                                       f"{'folder' if self._local else 'bucket'} {container} does not exist; "
                                       "create it, or correct VTP_EXTRACTS_URL") from None
        self._container_checked = True

    @contextmanager
    def _errors(self, name: str, doing: str) -> Iterator[None]:
        """The backends' errors as `ExtractStoreError`s that say what to do."""
        try:
            yield
        except ExtractStoreError:
            raise
        except PermissionError as error:
            raise ExtractStoreAccessDenied(f"{doing} extract {name} at {self.shown}: access denied "
                                           f"({_first_line(error)}); {CREDENTIALS_HINT}") from error
        except FileNotFoundError as error:
            raise ExtractStoreNotFound(f"{doing} extract {name} at {self.shown}: the bucket (or folder) does "
                                       f"not exist ({_first_line(error)}); create it, or correct "
                                       "VTP_EXTRACTS_URL") from error
        except Exception as error:  # the backends' own errors (botocore, aiohttp, OSError, ...)
            if type(error).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
                raise ExtractStoreAccessDenied(f"{doing} extract {name} at {self.shown}: no credentials were found; "
                                               f"{CREDENTIALS_HINT}") from error
            raise ExtractStoreError(f"{doing} extract {name} at {self.shown} failed ({type(error).__name__}: "
                                    f"{_first_line(error)}); check that the store can be reached (for an "
                                    "S3-compatible one, VTP_EXTRACTS_ENDPOINT_URL) and run again") from error


def extract_store(settings: Settings) -> ExtractStore | None:
    """The store the settings name (VTP_EXTRACTS_URL), or None: the extracts stay in the local folder."""
    return extract_store_at(settings.extracts_url, settings.extracts_endpoint_url)


def extract_store_at(url: str | None, endpoint_url: str | None = None) -> ExtractStore | None:
    """The store at `url` (an S3-compatible one at `endpoint_url`), or None without a URL."""
    if not url:
        return None
    return ExtractStore(url, {"endpoint_url": endpoint_url} if endpoint_url else {})


def shown_url(url: str) -> str:
    """`url` as messages show it: a password in it (sftp://user:secret@host) replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def local_sha256(path: Path) -> str | None:
    """The hash of the local file (None when there is none), computed again only when the file
    changed since it was last computed (size, modification time or inode differ)."""
    try:
        before = path.stat()
    except FileNotFoundError:
        return None
    try:
        digest, stamp = _record(path).read_text().split(" ", 1)
        if stamp == _stamp(before):
            return digest
    except (FileNotFoundError, ValueError):
        pass
    digest = _sha256(path)
    if _stamp(path.stat()) == _stamp(before):  # not replaced while it was read
        _record(path).write_text(f"{digest} {_stamp(before)}")
    return digest


def _remember(path: Path, digest: str) -> None:
    _record(path).write_text(f"{digest} {_stamp(path.stat())}")


def _record(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def _stamp(stat: os.stat_result) -> str:
    return f"{stat.st_size} {stat.st_mtime_ns} {stat.st_ino}"


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
