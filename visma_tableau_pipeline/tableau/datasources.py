"""Publishing to Tableau: projects, whole extracts, and incremental updates of published extracts.

Every call goes through `TableauSession.call`, so it survives an ended session and throttling.
Each function is safe to repeat: a project is looked up before it is created, a full publish
overwrites, and an incremental update carries a request id that Tableau applies at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import JobFailedException

from visma_tableau_pipeline.tableau.errors import TableauError, TableauJobFailed
from visma_tableau_pipeline.tableau.session import TableauSession

log = logging.getLogger(__name__)

PublishModeName = Literal["CreateNew", "Overwrite"]
NAME_TAKEN = "409004"  # a data source of that name exists in the project
PROJECT_NAME_TAKEN = "409006"
JOB_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class PublishOutcome:
    """What one publish or update request did."""

    datasource_id: str
    bytes_sent: int  # the size of the file uploaded
    mode: str  # CreateNew, Overwrite or Update (incremental)
    job_id: str | None = None
    request_id: str | None = None


def ensure_project(session: TableauSession, name: str) -> str:
    """The id of the top-level project `name`, created if missing."""
    def find(server: TSC.Server) -> str | None:
        options = TSC.RequestOptions()
        options.filter.add(TSC.Filter(TSC.RequestOptions.Field.Name,
                                      TSC.RequestOptions.Operator.Equals, name))
        matches = [p for p in TSC.Pager(server.projects, options)
                   if p.name == name and p.parent_id is None]
        return matches[0].id if matches else None

    def create(server: TSC.Server) -> str:
        try:
            return server.projects.create(TSC.ProjectItem(name=name)).id
        except TSC.ServerResponseError as error:
            if error.code != PROJECT_NAME_TAKEN:
                raise
        found = find(server)  # created meanwhile by a parallel run
        if found is None:
            raise TableauError(f"Tableau says project {name!r} exists but lists none by that name",
                               project=name)
        return found

    existing = session.call(find)
    if existing is not None:
        return existing
    project_id = session.call(create)
    log.info("created Tableau project %r (%s)", name, project_id)
    return project_id


def find_datasource(session: TableauSession, project_id: str, name: str) -> str | None:
    """The id of data source `name` in project `project_id`, or None."""
    def find(server: TSC.Server) -> str | None:
        options = TSC.RequestOptions()
        options.filter.add(TSC.Filter(TSC.RequestOptions.Field.Name,
                                      TSC.RequestOptions.Operator.Equals, name))
        matches = [d for d in TSC.Pager(server.datasources, options)
                   if d.name == name and d.project_id == project_id]
        return matches[0].id if matches else None

    return session.call(find)


def datasource_exists(session: TableauSession, datasource_id: str) -> bool:
    """Whether Tableau still has the data source `datasource_id` (a person may have deleted it,
    or the settings now name another site or server)."""
    def get(server: TSC.Server) -> bool:
        try:
            server.datasources.get_by_id(datasource_id)
        except TSC.ServerResponseError as error:
            if str(error.code).startswith("404"):
                return False
            raise
        return True

    return session.call(get)


def publish_full(
    session: TableauSession, project_id: str, name: str, hyper_path: Path,
    mode: PublishModeName = "Overwrite",
) -> PublishOutcome:
    """Publish the whole .hyper as data source `name` (TSC uploads in chunks from 64 MB on).

    CreateNew that meets an existing name (a repeat after a lost response, or a parallel run)
    overwrites instead, so that a retry never fails on its own earlier success.
    """
    hyper_path = Path(hyper_path)

    def publish(server: TSC.Server, publish_mode: str) -> TSC.DatasourceItem:
        item = TSC.DatasourceItem(project_id=project_id, name=name)
        return server.datasources.publish(item, str(hyper_path), publish_mode)

    try:
        published = session.call(lambda server: publish(server, mode))
    except TSC.ServerResponseError as error:
        if mode != "CreateNew" or error.code != NAME_TAKEN:
            raise
        log.info("data source %r already exists; overwriting it", name)
        mode = "Overwrite"
        published = session.call(lambda server: publish(server, mode))
    size = hyper_path.stat().st_size
    log.info("published %s (%s bytes) as data source %r (%s), mode %s", hyper_path.name, size,
             name, published.id, mode)
    return PublishOutcome(str(published.id), size, mode)


def publish_changes(
    session: TableauSession, datasource_id: str, payload_path: Path,
    actions: Sequence[Mapping[str, Any]], request_id: str, *, job_timeout_s: float = JOB_TIMEOUT_S,
) -> PublishOutcome:
    """Apply `actions` with the rows of `payload_path` to a published extract, and wait for it.

    The request id makes a repeat (after a lost response or a re-sign-in) apply at most once.
    Raises `TableauJobFailed` with Tableau's notes when the job fails or is cancelled.
    """
    payload_path = Path(payload_path)
    job = session.call(lambda server: server.datasources.update_hyper_data(
        datasource_id, request_id=request_id, actions=list(actions), payload=str(payload_path)))
    try:
        finished = session.call(lambda server: server.jobs.wait_for_job(job, timeout=job_timeout_s))
    except JobFailedException as error:  # includes JobCancelledException
        raise TableauJobFailed(
            f"Tableau job {error.job.id} updating data source {datasource_id} did not succeed "
            f"(finish code {error.job.finish_code}): {error.notes}",
            job_id=error.job.id, finish_code=error.job.finish_code, notes=error.notes,
            datasource_id=datasource_id, request_id=request_id,
        ) from None
    size = payload_path.stat().st_size
    log.info("updated data source %s with %s (%s bytes, request %s, job %s)", datasource_id,
             payload_path.name, size, request_id, finished.id)
    return PublishOutcome(datasource_id, size, "Update", finished.id, request_id)
