"""Asynchronous jobs: what publish-as-job, extract refresh and incremental updates return.

The sandbox does the work when the request arrives and reports the job as running until
`delay_s` has passed, so that `server.jobs.wait_for_job` polls at least once when a delay is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from visma_tableau_pipeline.sandbox.tableau import errors
from visma_tableau_pipeline.sandbox.tableau.stamps import Clock, new_luid


class FinishCode:
    SUCCESS = 0
    FAILED = 1
    CANCELLED = 2


@dataclass
class Job:
    type: str
    detail_tag: str
    """The child element naming the job's kind, e.g. `updateUploadedFileJob`."""
    created_at: float
    completes_at: float
    finish_code: int
    datasource_id: str | None = None
    datasource_name: str | None = None
    notes: str | None = None
    id: str = field(default_factory=new_luid)


class JobBook:
    def __init__(self, clock: Clock, delay_s: float) -> None:
        self._clock = clock
        self.delay_s = delay_s
        self._jobs: dict[str, Job] = {}

    def record(
        self,
        type_: str,
        detail_tag: str,
        datasource_id: str | None,
        datasource_name: str | None,
        finish_code: int = FinishCode.SUCCESS,
        notes: str | None = None,
    ) -> Job:
        now = self._clock()
        job = Job(
            type_, detail_tag, now, now + self.delay_s, finish_code, datasource_id, datasource_name, notes
        )
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise errors.not_found(errors.JOB_NOT_FOUND, f"Job '{job_id}' could not be found.") from None

    def is_complete(self, job: Job) -> bool:
        return self._clock() >= job.completes_at
