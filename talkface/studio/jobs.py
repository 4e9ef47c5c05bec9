"""The studio's jobs: each one a `talkface` command run in its own process, its state on disk.

A job lives in WORK/jobs/ID/: job.json (what it runs and its state), its inputs (copied there from
the upload folder), its outputs, stderr.log and stdout.log, and progress.jsonl (the command's bars
and status lines, `talkface.progress`). The page only reads these, so a reloaded page, a second
tab or a restarted server sees every job as it is.

- One thread (the store's) starts and reaps the processes, at most `parallel` at a time; the others
  wait their turn (queued). Each process gets SIGTERM when that thread's process dies
  (PR_SET_PDEATHSIG), so a killed server leaves no command running unsupervised.
- A command writes its outputs under temporary names renamed when complete (talkface.storage,
  media/destination.py); a cancelled, failed or interrupted job has its outputs and temporaries
  removed, and the profile folder it was making (a profile is listed only once its job is done).
- On start the store marks the jobs an earlier server left running as interrupted, cleaned up the
  same way; queued jobs run.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from talkface.storage import remove_stale_partials_in, write_json

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = "queued", "running", "done", "failed", "cancelled", "interrupted"
FINISHED = (DONE, FAILED, CANCELLED, INTERRUPTED)
KILL_AFTER = 20.0  # s a cancelled command has to clean up after SIGTERM before SIGKILL
POLL = 0.25  # s between the store thread's looks at its processes
_PR_SET_PDEATHSIG = 1
_ERROR_LINE = re.compile(r"^error:\s*(?P<message>.+)$")


@dataclass
class Job:
    """One command of the studio and its state (the fields of job.json)."""

    id: str
    kind: str  # profile, speak, preview, dub, batch, evaluate
    title: str
    argv: list[str] = field(default_factory=list)  # the talkface command's arguments
    outputs: list[str] = field(default_factory=list)  # absolute paths the command makes
    ok_codes: list[int] = field(default_factory=lambda: [0])
    profile: str = ""  # the profile folder a profile job makes
    made_profile: bool = False  # the folder did not exist before: removed if the job does not finish
    state: str = QUEUED
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    returncode: int | None = None
    message: str = ""
    folder: Path = Path()

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("folder")
        return data

    @classmethod
    def from_json(cls, data: dict, folder: Path) -> "Job":
        known = {name for name in cls.__dataclass_fields__ if name != "folder"}
        return cls(**{key: value for key, value in data.items() if key in known}, folder=folder)

    @property
    def finished_ok(self) -> bool:
        return self.state == DONE

    def path(self, name: str) -> Path:
        return self.folder / name

    def take(self, source: str | Path, name: str) -> Path:
        """Copy an uploaded file into the job's folder as `name` (a safe name made of it)."""
        target = self.folder / "in" / safe_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def progress(self) -> dict:
        """The last step of the command's latest bar and its latest status line:
        {"stage", "done", "total", "status", "log"} (empty strings and None where none came)."""
        seen = {"stage": "", "done": None, "total": None, "status": "", "log": ""}
        for event in _last_lines(self.folder / "progress.jsonl"):
            if event.get("kind") == "bar":
                seen.update(stage=str(event.get("stage", "")), done=event.get("done"), total=event.get("total"), status=str(event.get("status", "")))
            elif event.get("kind") == "log":
                seen["log"] = str(event.get("message", ""))
        return seen


def safe_name(name: str) -> str:
    """A file name made of `name` with only letters, digits, dot, dash and underscore (never hidden)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name)).name).strip("._") or "file"
    return cleaned[:120]


def _last_lines(path: Path, size: int = 16384) -> list[dict]:
    """The JSON lines in the last `size` bytes of `path` (a torn first or last line skipped)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - size, 0))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def error_line(path: Path) -> str:
    """The last `error: ...` line a command printed to `path` (its stderr), without the prefix."""
    try:
        lines = path.read_text("utf-8", "replace").splitlines()[-200:]
    except OSError:
        return ""
    for line in reversed(lines):
        match = _ERROR_LINE.match(line.strip())
        if match:
            return match["message"]
    return ""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """SIGTERM this process when the thread that started it (the store's) dies with its server."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class JobStore:
    """The jobs under `work`/jobs, and the thread that runs them. Use as a context manager
    (or call `close`): closing stops the running commands as a killed server would."""

    def __init__(self, work: str | Path, parallel: int = 1, python: str = sys.executable):
        self.work = Path(work)
        self.root = self.work / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.parallel = max(1, int(parallel))
        self.python = python
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._processes: dict[str, subprocess.Popen] = {}
        self._kill_at: dict[str, float] = {}
        self._cancelled: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._recover()
        self._thread = threading.Thread(target=self._run, name="talkface-studio-jobs", daemon=True)
        self._thread.start()

    def __enter__(self) -> "JobStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- making jobs
    def new(self, kind: str, title: str) -> Job:
        """A job folder for the caller to put inputs in; `submit` queues it, `discard` drops it."""
        job_id = time.strftime("%Y%m%d-%H%M%S") + f"-{kind}-{secrets.token_hex(3)}"
        folder = self.root / job_id
        folder.mkdir(parents=True)
        return Job(id=job_id, kind=kind, title=title, created=time.time(), folder=folder)

    def discard(self, job: Job) -> None:
        shutil.rmtree(job.folder, ignore_errors=True)

    def submit(self, job: Job) -> Job:
        with self._lock:
            if job.profile:
                job.made_profile = not Path(job.profile).exists()
            job.state = QUEUED
            self._save(job)
            self._jobs[job.id] = job
        self._wake.set()
        return job

    # ---- reading
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Every job, the newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created, reverse=True)

    def ahead_of(self, job: Job) -> int:
        """Jobs that run or start before this queued one."""
        with self._lock:
            return sum(1 for other in self._jobs.values() if other.state == RUNNING or (other.state == QUEUED and other.created < job.created))

    def busy_profiles(self) -> set[str]:
        """Profile folders that jobs are still making (not to be listed or used yet)."""
        with self._lock:
            return {job.profile for job in self._jobs.values() if job.profile and job.state in (QUEUED, RUNNING)}

    # ---- stopping
    def cancel(self, job_id: str) -> Job | None:
        """Stop a job: a queued one never starts, a running one gets SIGTERM (SIGKILL after
        KILL_AFTER s); its outputs are removed once it has stopped."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return job
            if job.state == QUEUED:
                self._finish(job, CANCELLED, "cancelled before it started")
                return job
            self._cancelled.add(job.id)
            self._signal(job, signal.SIGTERM)
            self._kill_at[job.id] = time.monotonic() + KILL_AFTER
        self._wake.set()
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until the job has finished (or `timeout` s passed); returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None or job.state in FINISHED or (deadline is not None and time.monotonic() > deadline):
                return job
            time.sleep(POLL)

    def close(self) -> None:
        """Stop the thread and the commands (as a killed server would: they are interrupted)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        with self._lock:
            for job_id, process in list(self._processes.items()):
                self._signal(self._jobs[job_id], signal.SIGTERM)
            for job_id, process in list(self._processes.items()):
                try:
                    process.wait(timeout=KILL_AFTER)
                except subprocess.TimeoutExpired:
                    self._signal(self._jobs[job_id], signal.SIGKILL)
                    process.wait()
                self._finish(self._jobs[job_id], INTERRUPTED, "the studio stopped while this job ran; start it again")
            self._processes.clear()

    # ---- the thread
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._reap()
                self._start_queued()
            self._wake.wait(POLL)
            self._wake.clear()

    def _reap(self) -> None:
        now = time.monotonic()
        for job_id, process in list(self._processes.items()):
            job = self._jobs[job_id]
            code = process.poll()
            if code is None:
                if job_id in self._kill_at and now > self._kill_at[job_id]:
                    self._signal(job, signal.SIGKILL)
                continue
            del self._processes[job_id]
            self._kill_at.pop(job_id, None)
            job.returncode = code
            if job_id in self._cancelled:
                self._cancelled.discard(job_id)
                self._finish(job, CANCELLED, "cancelled")
            elif code in job.ok_codes and all(Path(path).exists() for path in job.outputs):  # a batch with failed rows is done too
                self._finish(job, DONE, "" if code == 0 else "some parts failed: see the table")
            else:
                message = error_line(job.path("stderr.log")) or f"the command ended with exit code {code} (see {job.path('stderr.log')})"
                self._finish(job, FAILED, message)

    def _start_queued(self) -> None:
        waiting = sorted((job for job in self._jobs.values() if job.state == QUEUED), key=lambda job: job.created)
        for job in waiting[: max(0, self.parallel - len(self._processes))]:
            environment = {**os.environ, "TALKFACE_PROGRESS_FILE": str(job.path("progress.jsonl")), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
            environment.pop("TALKFACE_QUIET", None)
            try:
                with open(job.path("stdout.log"), "ab") as out, open(job.path("stderr.log"), "ab") as err:
                    process = subprocess.Popen(
                        [self.python, "-m", "talkface", *job.argv], cwd=job.folder, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                        env=environment, start_new_session=True, preexec_fn=_die_with_parent,
                    )
            except OSError as exc:
                self._finish(job, FAILED, f"could not start the command: {exc}")
                continue
            self._processes[job.id] = process
            job.state, job.pid, job.started = RUNNING, process.pid, time.time()
            self._save(job)

    def _finish(self, job: Job, state: str, message: str) -> None:
        job.state, job.message, job.finished = state, message, time.time()
        if state != DONE:
            self._clean(job)
        self._save(job)

    def _clean(self, job: Job) -> None:
        """Remove what an unfinished job made: its outputs, temporaries, a profile it was making."""
        for output in job.outputs:
            path = Path(output)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            remove_stale_partials_in(path.parent)
        remove_stale_partials_in(job.folder / "out")
        if job.made_profile and job.profile:
            shutil.rmtree(job.profile, ignore_errors=True)

    def _signal(self, job: Job, signum: int) -> None:
        try:
            os.killpg(job.pid, signum)  # the command and anything it started
        except (ProcessLookupError, PermissionError, TypeError):
            pass

    def _save(self, job: Job) -> None:
        write_json(job.path("job.json"), job.to_json())

    def _recover(self) -> None:
        """Read the jobs on disk; those an earlier server left running are interrupted."""
        for path in sorted(self.root.glob("*/job.json")):
            try:
                job = Job.from_json(json.loads(path.read_text()), path.parent)
            except (OSError, ValueError, TypeError):
                continue  # a folder that never became a job, or a damaged one: not listed
            if job.state == RUNNING:
                if job.pid and _is_talkface(job.pid):  # still cleaning up after the server died: stop it
                    self._signal(job, signal.SIGTERM)
                    _wait_gone(job.pid, KILL_AFTER)
                self._finish(job, INTERRUPTED, "the studio stopped while this job ran; start it again")
            self._jobs[job.id] = job


def _is_talkface(pid: int) -> bool:
    try:
        return b"talkface" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _is_talkface(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _is_talkface(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
