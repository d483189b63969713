"""Published data sources: their records, their real .hyper files on disk, and the ways they change.

- Publish in one request (multipart) or through an upload session (`fileUploads`, for files of
  64 MB and more), in mode CreateNew (409004 when the name is taken in the project), Overwrite or
  Append (rows of the upload appended through the Hyper engine).
- Incremental updates (`update_hyper_data`): actions applied in one transaction; the request id
  is an idempotency key for 24 hours, so a repeated request returns the first job unapplied.
- Every change fires the matching webhook event.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from visma_tableau_pipeline.sandbox.tableau import errors
from visma_tableau_pipeline.sandbox.tableau.directory import Directory
from visma_tableau_pipeline.sandbox.tableau.hyper_engine import (
    HyperActionError,
    HyperEngine,
    InvalidHyperFile,
)
from visma_tableau_pipeline.sandbox.tableau.jobs import FinishCode, Job, JobBook
from visma_tableau_pipeline.sandbox.tableau.stamps import Clock, new_luid
from visma_tableau_pipeline.sandbox.tableau.webhooks import WebhookRegistry

log = logging.getLogger(__name__)

REQUEST_ID_TTL_S = 24 * 60 * 60


class PublishMode(Enum):
    CREATE_NEW = "CreateNew"
    OVERWRITE = "Overwrite"
    APPEND = "Append"


@dataclass
class Datasource:
    name: str
    project_id: str
    owner_id: str
    created_at: float
    updated_at: float
    size_bytes: int
    description: str | None = None
    id: str = field(default_factory=new_luid)
    connection_id: str = field(default_factory=new_luid)

    @property
    def content_url(self) -> str:
        return re.sub(r"[^A-Za-z0-9_-]", "", self.name.replace(" ", "")) or self.id


@dataclass(frozen=True)
class _SeenRequest:
    job_id: str
    at: float


class DatasourceCatalog:
    """Data sources of the site and their files under `storage_dir`. The caller serializes."""

    def __init__(
        self,
        storage_dir: Path,
        engine: HyperEngine,
        directory: Directory,
        jobs: JobBook,
        webhooks: WebhookRegistry,
        clock: Clock,
    ) -> None:
        self._files_dir = storage_dir / "datasources"
        self._uploads_dir = storage_dir / "uploads"
        for folder in (self._files_dir, self._uploads_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._engine = engine
        self._directory = directory
        self._jobs = jobs
        self._webhooks = webhooks
        self._clock = clock
        self.records: dict[str, Datasource] = {}
        self._uploads: dict[str, Path] = {}
        self._seen_requests: dict[str, _SeenRequest] = {}

    def file_of(self, datasource: Datasource) -> Path:
        return self._files_dir / f"{datasource.id}.hyper"

    def get(self, datasource_id: str) -> Datasource:
        try:
            return self.records[datasource_id]
        except KeyError:
            raise errors.not_found(
                errors.DATASOURCE_NOT_FOUND, f"Datasource '{datasource_id}' could not be found."
            ) from None

    def by_name(self, name: str) -> Datasource:
        matches = [d for d in self.records.values() if d.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} data sources are named {name!r}")
        return matches[0]

    # -- upload sessions -------------------------------------------------------------------

    def start_upload(self) -> str:
        upload_id = new_luid()
        path = self._uploads_dir / f"{upload_id}.part"
        path.write_bytes(b"")
        self._uploads[upload_id] = path
        return upload_id

    def append_upload(self, upload_id: str, chunk: bytes) -> int:
        """Adds a chunk; the session's size so far in bytes."""
        path = self._upload_path(upload_id)
        with path.open("ab") as handle:
            handle.write(chunk)
        return path.stat().st_size

    def take_upload(self, upload_id: str) -> Path:
        """The uploaded file; the session ends (Tableau's sessions are single-use)."""
        path = self._upload_path(upload_id)
        del self._uploads[upload_id]
        return path

    def stage_bytes(self, content: bytes) -> Path:
        """A single-request publish body, written where upload sessions keep their files."""
        path = self._uploads_dir / f"{new_luid()}.part"
        path.write_bytes(content)
        return path

    def _upload_path(self, upload_id: str) -> Path:
        try:
            return self._uploads[upload_id]
        except KeyError:
            raise errors.not_found(
                errors.UPLOAD_NOT_FOUND, f"Upload session '{upload_id}' could not be found."
            ) from None

    # -- publish, delete, refresh ------------------------------------------------------------

    def publish(
        self,
        name: str,
        project_id: str | None,
        description: str | None,
        staged_file: Path,
        mode: PublishMode,
        owner_id: str,
    ) -> Datasource:
        """Stores `staged_file` (consumed) as data source `name` in the project, per `mode`."""
        try:
            return self._publish(name, project_id, description, staged_file, mode, owner_id)
        finally:
            staged_file.unlink(missing_ok=True)

    def _publish(
        self,
        name: str,
        project_id: str | None,
        description: str | None,
        staged_file: Path,
        mode: PublishMode,
        owner_id: str,
    ) -> Datasource:
        project = self._directory.project(project_id) if project_id else self._directory.default_project()
        existing = next(
            (d for d in self.records.values() if d.name == name and d.project_id == project.id), None
        )
        try:
            self._engine.tables(staged_file)
        except InvalidHyperFile as exc:
            raise errors.bad_request(str(exc), "400011") from None
        now = self._clock()
        if existing is None:
            if mode is PublishMode.APPEND:
                raise errors.not_found(
                    errors.DATASOURCE_NOT_FOUND,
                    f"There is no data source '{name}' in project '{project.name}' to append to.",
                )
            datasource = Datasource(name, project.id, owner_id, now, now, 0, description)
            os.replace(staged_file, self.file_of(datasource))
            event = "DatasourceCreated"
        elif mode is PublishMode.CREATE_NEW:
            raise errors.conflict(
                errors.DATASOURCE_EXISTS,
                f"A data source named '{name}' already exists in project '{project.name}'.",
            )
        else:
            datasource = existing
            if mode is PublishMode.OVERWRITE:
                os.replace(staged_file, self.file_of(datasource))
            else:
                try:
                    self._engine.append(self.file_of(datasource), staged_file)
                except HyperActionError as exc:
                    raise errors.bad_request(f"Append failed: {exc}", "400011") from None
            datasource.updated_at = now
            if description is not None:
                datasource.description = description
            event = "DatasourceUpdated"
        datasource.size_bytes = self.file_of(datasource).stat().st_size
        self.records[datasource.id] = datasource
        log.info("sandbox: %s data source %s (%s)", mode.value, datasource.name, datasource.id)
        self._webhooks.fire(event, datasource.name, datasource.id)
        return datasource

    def delete(self, datasource_id: str) -> None:
        datasource = self.get(datasource_id)
        del self.records[datasource.id]
        self.file_of(datasource).unlink(missing_ok=True)
        self._webhooks.fire("DatasourceDeleted", datasource.name, datasource.id)

    def refresh(self, datasource_id: str) -> Job:
        datasource = self.get(datasource_id)
        self._webhooks.fire("DatasourceRefreshStarted", datasource.name, datasource.id)
        job = self._jobs.record("RefreshExtract", "extractRefreshJob", datasource.id, datasource.name)
        datasource.updated_at = self._clock()
        self._webhooks.fire("DatasourceRefreshSucceeded", datasource.name, datasource.id)
        return job

    # -- incremental update ------------------------------------------------------------------

    def update_data(
        self,
        datasource_id: str,
        request_id: str,
        actions: Sequence[Mapping[str, Any]],
        payload: Path | None,
    ) -> Job:
        """Applies the actions once per request id (24 hours); the job says how it went."""
        try:
            datasource = self.get(datasource_id)
            now = self._clock()
            seen = self._seen_requests.get(request_id)
            if seen is not None and now - seen.at < REQUEST_ID_TTL_S:
                log.info("sandbox: update request %s seen before; not applied again", request_id)
                return self._jobs.get(seen.job_id)
            try:
                touched = self._engine.apply_actions(self.file_of(datasource), payload, actions)
            except HyperActionError as exc:
                job = self._jobs.record(
                    "UpdateUploadedFile", "updateUploadedFileJob", datasource.id, datasource.name,
                    FinishCode.FAILED, str(exc),
                )
            else:
                datasource.updated_at = now
                datasource.size_bytes = self.file_of(datasource).stat().st_size
                job = self._jobs.record(
                    "UpdateUploadedFile", "updateUploadedFileJob", datasource.id, datasource.name,
                    notes=f"{len(actions)} actions applied; {touched} rows touched",
                )
                self._webhooks.fire("DatasourceUpdated", datasource.name, datasource.id)
            self._seen_requests[request_id] = _SeenRequest(job.id, now)
            return job
        finally:
            if payload is not None:
                payload.unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self._uploads_dir, ignore_errors=True)
