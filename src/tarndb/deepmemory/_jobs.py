"""Background jobs whose state lives in the lake's catalog (used by Deep Memory training).

A job is a catalog object of kind ``deepmemory_job``, so every process on the lake lists it:
``status`` goes ``pending`` (waiting for a worker slot) -> ``training`` -> ``completed`` |
``failed`` | ``cancelled``, with ``phase`` (what it is doing now), ``progress`` and
``results``. The process running a job (its ``owner``) writes a heartbeat at least every
:data:`HEARTBEAT_S`.

The owner also holds the job's lease on the lake (``job:<id>``, :mod:`tarndb.storage.leases`:
a file lock on a local lake, freed by the kernel when the process dies; an expiring,
renewed object on S3). A job whose lease is free while it says ``pending`` or ``training``
lost its owner; it is recovered by the next process that looks at the jobs (every
``tarndb serve`` looks every :data:`SWEEP_S` seconds, and at start): resumed when its inputs
let it run again (see ``make_work`` in :func:`recover`), otherwise marked failed with the
reason. Recovering takes the lease first, so exactly one server resumes a job, and no job
shows "training" forever after a crash. (On lakes without leases, other object stores, an
owner is taken for gone when its pid is dead on the same host or its heartbeat is older
than :data:`STALE_AFTER_S`.)

Cancelling from another process writes a ``deepmemory_cancel`` object that the owner polls
(a separate object, so the owner's own writes of the job record cannot erase the request).

At most :data:`MAX_RUNNING` jobs train at once in a process: training is CPU-bound and runs
beside the queries the same server answers; the rest wait as ``pending``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import NotFound, TarnError
from ..storage.leases import Lease
from ._model import TrainingCancelled

log = logging.getLogger(__name__)

JOB_KIND = "deepmemory_job"
CANCEL_KIND = "deepmemory_cancel"
MODEL_KIND = "deepmemory_model"
ACTIVE = ("pending", "training")
STATUSES = ("pending", "training", "completed", "failed", "cancelled")
#: the owner writes the job at least this often (progress writes count)
HEARTBEAT_S = 10.0
#: an owner on another host is taken for dead after this long without a heartbeat
STALE_AFTER_S = 60.0
#: progress is written at most this often (each write is a catalog commit)
PROGRESS_EVERY_S = 1.0
#: how often ``tarndb serve`` looks for jobs whose owner died
SWEEP_S = float(os.environ.get("TARNDB_JOB_SWEEP_S", "5"))
#: a job interrupted this many times is not resumed again
MAX_ATTEMPTS = 3
#: jobs training at once in one process; the others wait as ``pending``
MAX_RUNNING = 1
#: this process, as written in the jobs it owns
OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

_guard = threading.Lock()
_running: dict[str, _Job] = {}
_slots = threading.Semaphore(MAX_RUNNING)


class JobContext:
    """What a job's work function is handed: cancellation, phase and progress reports."""

    def __init__(self, job: _Job) -> None:
        self._job = job

    @property
    def record(self) -> dict[str, Any]:
        """A copy of the job's record (id, workspace, table, attempts, config ...)."""
        with self._job.lock:
            return dict(self._job.record)

    def should_stop(self) -> bool:
        return self._job.stop.is_set()

    def check(self) -> None:
        """Raise :class:`TrainingCancelled` when a cancel was asked for."""
        if self._job.stop.is_set():
            raise TrainingCancelled()

    def phase(self, text: str) -> None:
        """Say what the job does now (written within :data:`PROGRESS_EVERY_S`)."""
        self._job.write(throttle=True, phase=text)

    def progress(self, p: dict[str, Any], phase: str | None = None) -> None:
        changes: dict[str, Any] = {"progress": p}
        if phase is not None:
            changes["phase"] = phase
        self._job.write(throttle=True, **changes)


#: ``work(ctx) -> fields`` merged into the record on completion (results, model_uri ...)
Work = Callable[[JobContext], dict[str, Any]]


def _leased(db: Any) -> bool:
    lake = getattr(db, "lake", None)
    return lake is not None and (lake.is_local or lake.is_s3)


def _lease(db: Any, job_id: str) -> Lease | None:
    return Lease(db.lake, f"job:{job_id}") if _leased(db) else None


class _Job:
    def __init__(self, db: Any, record: dict[str, Any], work: Work,
                 lease: Lease | None = None) -> None:
        self.db = db
        self.lease = lease
        self.id = str(record["id"])
        self.record = record
        self.work = work
        self.stop = threading.Event()
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.written_at = 0.0
        self.pending_progress = False
        self.thread = threading.Thread(target=self._run, name=f"deepmemory-{self.id}",
                                       daemon=True)

    def write(self, throttle: bool = False, **changes: Any) -> None:
        with self.lock:
            self.record.update(changes)
            now = time.time()
            if throttle and now - self.written_at < PROGRESS_EVERY_S:
                self.pending_progress = True
                return
            self.record["heartbeat"] = now
            self.written_at = now
            self.pending_progress = False
            self.db.catalog.put_object(JOB_KIND, self.id, dict(self.record))

    def beat(self) -> None:
        """Write the heartbeat (or a held-back progress update) when due; pick up a cancel
        asked for by another process."""
        if self.db.catalog.get_object(CANCEL_KIND, self.id) is not None:
            self.stop.set()
        if self.lease is not None and not self.lease.renew_if_due():
            # Another server broke the lease after it expired and runs the job now.
            log.warning("deep memory job %s: lost its lease; stopping", self.id)
            self.stop.set()
        if self.pending_progress and time.time() - self.written_at >= PROGRESS_EVERY_S:
            self.write()
        elif time.time() - self.written_at >= HEARTBEAT_S:
            self.write()

    def _finish(self, **changes: Any) -> None:
        try:
            self.write(finished_at=time.time(), **changes)
        except Exception:  # the Database was closed under the job: recovered later
            log.exception("deep memory job %s: could not record its end (%s)", self.id,
                          changes.get("status"))

    def _heartbeat(self) -> None:
        while not self.done.wait(max(0.1, min(1.0, PROGRESS_EVERY_S))):
            try:
                self.beat()
            except Exception:  # a failed heartbeat must not kill the job
                log.exception("deep memory job %s: heartbeat failed", self.id)

    def _run(self) -> None:
        beat = threading.Thread(target=self._heartbeat, name=f"deepmemory-beat-{self.id}",
                                daemon=True)
        beat.start()
        have_slot = False
        try:
            while not (have_slot := _slots.acquire(timeout=0.2)):
                if self.stop.is_set():
                    raise TrainingCancelled()
            if self.stop.is_set():
                raise TrainingCancelled()
            self.write(status="training", phase="starting", started_at=time.time(),
                       attempts=int(self.record.get("attempts", 0)) + 1)
            extra = self.work(JobContext(self))
            self._finish(status="completed", phase="done", **extra)
        except TrainingCancelled:
            self._finish(status="cancelled", phase="cancelled")
        except TarnError as e:  # bad data found late (e.g. the table changed): no traceback
            self._finish(status="failed", phase="failed", error=e.message)
        except Exception as e:  # a job reports its failure instead of dying silently
            log.exception("deep memory job %s failed", self.id)
            self._finish(status="failed", phase="failed", error=f"{type(e).__name__}: {e}")
        finally:
            if have_slot:
                _slots.release()
            self.done.set()
            with _guard:
                _running.pop(self.id, None)
            if self.lease is not None:
                self.lease.release()
            try:
                if self.db.catalog.get_object(CANCEL_KIND, self.id) is not None:
                    self.db.catalog.delete_object(CANCEL_KIND, self.id)
            except Exception:  # the database may be closing; the flag is harmless
                log.debug("could not clear the cancel flag of %s", self.id, exc_info=True)


def new_job_id() -> str:
    # 24 hex characters like the seed's ids; time-ordered, so ids sort by creation.
    return f"{int(time.time()):08x}{uuid.uuid4().hex[:16]}"


def start(db: Any, record: dict[str, Any], work: Work, lease: Lease | None = None) -> str:
    """Record ``record`` as a pending job owned by this process and run ``work`` in a daemon
    thread once a worker slot is free; returns the job id. ``lease``: the job's lease, when
    the caller took it (a recovery); otherwise it is taken here."""
    now = time.time()
    if lease is None:
        lease = _lease(db, str(record["id"]))
        if lease is not None and not lease.try_acquire():
            raise TarnError(f"deep memory job {record['id']} is run by another server")
    record.setdefault("created_at", now)
    record.update(status="pending", phase="waiting for a worker", progress=None,
                  results=None, error=None, owner=OWNER, heartbeat=now)
    record.setdefault("attempts", 0)
    job = _Job(db, record, work, lease)
    # Listed as running here before the record says so: a listing in between must not take
    # the job for an orphan and start it a second time.
    with _guard:
        _running[job.id] = job
    try:
        db.catalog.put_object(JOB_KIND, job.id, dict(record))
    except BaseException:
        with _guard:
            _running.pop(job.id, None)
        if lease is not None:
            lease.release()
        raise
    job.written_at = now
    job.thread.start()
    return job.id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(job: dict[str, Any], now: float | None = None, db: Any = None) -> bool:
    """Whether the process that runs ``job`` can no longer finish it (with ``db`` on a lake
    with leases: nobody holds the job's lease)."""
    owner = str(job.get("owner", ""))
    if owner == OWNER:
        with _guard:
            return str(job.get("id")) not in _running
    if db is not None and _leased(db):
        from ..storage.leases import holder_alive

        return not holder_alive(db.lake, f"job:{job.get('id')}")
    host, _, rest = owner.partition(":")
    pid_s = rest.partition(":")[0]
    if host == socket.gethostname() and pid_s.isdigit() and not _pid_alive(int(pid_s)):
        return True
    # A live pid may be a reused one, and another host's pids tell nothing: the heartbeat.
    return (now or time.time()) - float(job.get("heartbeat", 0.0)) > STALE_AFTER_S


#: ``make_work(record) -> (work, None)`` to resume, or ``(None, why it cannot be resumed)``
MakeWork = Callable[[dict[str, Any]], tuple[Work | None, str | None]]


def recover(db: Any, make_work: MakeWork | None) -> dict[str, dict[str, Any]]:
    """Every job of the lake, after resuming or failing those whose owner died.

    Without ``make_work`` orphaned jobs are only marked failed.
    """
    jobs = db.catalog.list_objects(JOB_KIND)
    now = time.time()
    for job_id, job in list(jobs.items()):
        if job.get("status") not in ACTIVE:
            continue
        with _guard:
            if job_id in _running:
                continue
        lease = _lease(db, job_id)
        if lease is None:
            if owner_gone(job, now):
                jobs[job_id] = _recover_one(db, job, make_work)
            continue
        if not lease.try_acquire():
            continue  # its owner is alive (or another server is recovering it)
        try:
            # The owner may have finished (and let go) since the listing was read.
            db.catalog.refresh(force=True)
            fresh = db.catalog.get_object(JOB_KIND, job_id)
            if fresh is None or fresh.get("status") not in ACTIVE:
                if fresh is not None:
                    jobs[job_id] = fresh
                lease.release()
                continue
            jobs[job_id] = _recover_one(db, fresh, make_work, lease)
        except BaseException:
            lease.release()
            raise
    return jobs


def _recover_one(db: Any, job: dict[str, Any], make_work: MakeWork | None,
                 lease: Lease | None = None) -> dict[str, Any]:
    """Resume or fail ``job``; ``lease`` (held) goes to the resumed run, or is released."""
    job_id = str(job["id"])
    now = time.time()
    if db.catalog.get_object(CANCEL_KIND, job_id) is not None:
        job = dict(job, status="cancelled", phase="cancelled", finished_at=now)
        db.catalog.put_object(JOB_KIND, job_id, job)
        db.catalog.delete_object(CANCEL_KIND, job_id)
        if lease is not None:
            lease.release()
        return job
    work: Work | None = None
    why: str | None = "this process cannot resume it"
    attempts = int(job.get("attempts", 0))
    if attempts >= MAX_ATTEMPTS:
        why = f"it was interrupted {attempts} times"
    elif make_work is not None:
        try:
            work, why = make_work(job)
        except TarnError as e:
            work, why = None, e.message
    if work is None:
        job = dict(job, status="failed", phase="failed", finished_at=now,
                   error=f"interrupted: the process running this job stopped before it "
                         f"finished (server restart or crash) and the job cannot be "
                         f"resumed: {why}. Train again.")
        db.catalog.put_object(JOB_KIND, job_id, job)
        if lease is not None:
            lease.release()
        return job
    log.info("resuming deep memory job %s (attempt %d)", job_id, attempts + 1)
    record = dict(job, resumed_at=now, interrupted_owner=job.get("owner"))
    start(db, record, work, lease=lease if lease is not None else _take(db, job_id))
    with _guard:
        running = _running.get(job_id)
    if running is not None:
        with running.lock:
            record = dict(running.record)
    record["phase"] = "resuming after an interrupted run"
    return record


def _take(db: Any, job_id: str) -> Lease | None:
    lease = _lease(db, job_id)
    if lease is not None and not lease.try_acquire():
        raise TarnError(f"deep memory job {job_id} is run by another server")
    return lease


def request_cancel(db: Any, job_id: str) -> bool:
    """Ask a pending or training job to stop; False when it had already finished."""
    job = db.catalog.get_object(JOB_KIND, job_id)
    if job is None:
        raise NotFound(f"no deep memory job {job_id!r}")
    if job.get("status") not in ACTIVE:
        return False
    with _guard:
        running = _running.get(job_id)
    if running is not None:
        running.stop.set()
    elif owner_gone(job, db=db):
        db.catalog.put_object(JOB_KIND, job_id, dict(job, status="cancelled",
                                                      phase="cancelled",
                                                      finished_at=time.time()))
    else:  # another live process runs it: it polls this flag with its heartbeat
        db.catalog.put_object(CANCEL_KIND, job_id, {"at": time.time()})
    return True


def wait(job_id: str, timeout: float | None = None) -> bool:
    """Wait for this process's run of ``job_id``; True when it is not running here."""
    with _guard:
        running = _running.get(job_id)
    if running is None:
        return True
    return running.done.wait(timeout)


def running_here() -> list[str]:
    """Ids of the jobs this process runs now."""
    with _guard:
        return list(_running)
