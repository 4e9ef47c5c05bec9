"""Running a manifest: people finetuned once, jobs in worker processes or on a Ray cluster,
a report file updated after every job, so an interrupted batch resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable

from talkface import progress
from talkface._version import __version__
from talkface.batch.manifest import Job, read_manifest
from talkface.cache import file_digest
from talkface.config import FinetuneConfig
from talkface.errors import DependencyError, InputError, TalkfaceError
from talkface.storage import write_json

REPORT_FORMAT = 1


@dataclass
class JobResult:
    """What happened to one row."""

    row: int
    person: str
    audio: str
    out: str
    status: str  # 'done', 'skipped' (done by an earlier run), 'failed'
    key: str = ""
    seconds: float = 0.0
    n_frames: int = 0
    error: str = ""
    error_type: str = ""
    out_bytes: int = 0
    video: str = ""  # the footage of a dub row


@dataclass
class BatchReport:
    """Every row's result, in manifest order."""

    results: list[JobResult]
    seconds: float
    workers: int
    backend: str
    report_path: Path | None = None
    counts: dict = field(default_factory=dict)

    def __post_init__(self):
        self.counts = {status: sum(r.status == status for r in self.results) for status in ("done", "skipped", "failed")}

    @property
    def ok(self) -> bool:
        return self.counts["failed"] == 0

    def to_json(self) -> dict:
        return {
            "format": REPORT_FORMAT,
            "talkface": __version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(self.seconds, 2),
            "workers": self.workers,
            "backend": self.backend,
            "counts": self.counts,
            "jobs": [asdict(r) for r in self.results],
        }


MAX_DEFAULT_WORKERS = 8  # each worker holds its own models (~1.5 GB)


def default_workers() -> int:
    """One single-threaded worker per core, up to 8: on 2 cores, 2 workers render 1.3x as many
    frames/s as 1 worker with 2 threads (benchmarks/results/batch.md)."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def run_batch(
    jobs: str | Path | Iterable[Job],
    workers: int | None = None,
    ray_address: str | None = None,
    report: str | Path | None = None,
    preset: str = FinetuneConfig.preset,
    device: str = "cpu",
    retry_failed: bool = True,
    on_result: Callable[[JobResult], None] | None = None,
) -> BatchReport:
    """Render every job of a manifest; the Python face of `talkface batch`.

    Args:
        jobs: a manifest path (.csv, .jsonl, or a folder with people/ and audio/) or Jobs.
        workers: parallel processes on this machine (default: `default_workers()`).
        ray_address: run on a Ray cluster instead: 'local' starts one on this machine, 'auto'
            joins the one this machine belongs to, or 'ray://HOST:PORT'. Every node must see the
            same paths and have talkface installed.
        report: the JSON report (default: MANIFEST.report.json beside the manifest, or
            ./talkface-batch.report.json for a list of jobs); read first to skip finished rows.
        preset: refiner preset for people given as clips (finetuned once, before the jobs).
        device: 'cpu', 'cuda' or 'auto' for each job.
        retry_failed: run rows that failed last time again (True) or keep their failure.
        on_result: called with each row's result as it finishes.

    Returns:
        The report; `report.ok` is False if any row failed. Bad rows never stop the others.
    """
    started = time.perf_counter()
    if isinstance(jobs, (str, Path)):
        manifest = Path(jobs)
        job_list = read_manifest(manifest)
        default_report = manifest.with_name(manifest.name + ".report.json") if manifest.is_file() else manifest / "talkface-batch.report.json"
    else:
        job_list = list(jobs)
        default_report = Path("talkface-batch.report.json")
    report_path = Path(report) if report else default_report
    previous = _previous_results(report_path)
    workers = workers or default_workers()
    if workers < 1:
        raise InputError(f"--workers must be at least 1 (got {workers})")

    results: dict[int, JobResult] = {}
    for job in job_list:
        if job.problem:
            results[job.row] = _failed(job, "", f"InputError: {job.problem}")
            progress.log(f"  row {job.row} FAILED: {job.problem}")
    profiles, person_errors = _prepare_people([job for job in job_list if not job.problem], preset, device)
    pending: list[tuple[Job, str]] = []
    for job in job_list:
        if job.problem:
            continue
        who = _who(job)
        if who in person_errors:
            results[job.row] = _failed(job, "", person_errors[who])
            continue
        key = _job_key(job, profiles[who])
        earlier = previous.get(job.row)
        if earlier and earlier.key == key and _finished(earlier, job):
            results[job.row] = JobResult(**{**asdict(earlier), "status": "skipped"})
        elif earlier and earlier.key == key and earlier.status == "failed" and not retry_failed:
            results[job.row] = earlier
        else:
            pending.append((job, key))

    backend = f"ray ({ray_address})" if ray_address else f"{workers} local worker{'s' if workers > 1 else ''}"
    progress.log(f"batch: {len(job_list)} jobs, {len(results)} already settled, {len(pending)} to run on {backend}")

    def record(result: JobResult) -> None:
        results[result.row] = result
        _save(report_path, job_list, results, previous, time.perf_counter() - started, workers, backend)
        mark = {"failed": "FAILED"}.get(result.status, result.status)
        detail = f"{result.seconds:.1f} s" if result.status == "done" else result.error
        progress.log(f"  row {result.row} {mark} {Path(result.out).name}: {detail}")
        if on_result:
            on_result(result)

    tasks = [(job, key, str(profiles[_who(job)]), device) for job, key in pending]
    if tasks:
        if ray_address:
            _run_ray(tasks, ray_address, workers, record)
        elif workers == 1:
            _run_serial(tasks, record)
        else:
            _run_processes(tasks, workers, record)
    final = BatchReport([results[job.row] for job in job_list], time.perf_counter() - started, workers, backend, report_path)
    write_json(report_path, final.to_json())
    return final


# -- people -----------------------------------------------------------------------------------
def _who(job: Job) -> Path:
    """Whose profile a row needs: its person, or (a dub without one) its video's own."""
    return job.person if job.person is not None else job.video


def _prepare_people(jobs: list[Job], preset: str, device: str) -> tuple[dict[Path, Path], dict[Path, str]]:
    """Profile folder for each person, made once before the jobs run (so parallel jobs never
    build the same profile): clips are finetuned (reusing a finished profile), and a dub row
    without a person gets the profile of its own video."""
    from talkface.finetune import finetune
    from talkface.profile import default_profile_dir

    profiles, errors = {}, {}
    for person in dict.fromkeys(job.person for job in jobs if job.person is not None):
        if (person / "profile.json").exists():
            profiles[person] = person
            continue
        if not person.exists():
            errors[person] = f"InputError: no such person: {person} is neither a profile folder nor a clip"
            continue
        folder = default_profile_dir(person)
        try:
            if not _profile_matches(folder, person):
                progress.log(f"finetuning {person.name} (once, shared by its jobs) into {folder}")
                finetune(person, folder, FinetuneConfig(preset=preset), device=device)
            profiles[person] = folder
        except TalkfaceError as error:
            errors[person] = f"{type(error).__name__}: finetuning {person.name} failed: {error}"
    for video in dict.fromkeys(job.video for job in jobs if job.video is not None and job.person is None):
        try:
            from talkface.dub import prepare_person

            progress.log(f"building the person of {video.name} (once, shared by its dubs)")
            profiles[video] = prepare_person(video, preset, device)
        except TalkfaceError as error:
            errors[video] = f"{type(error).__name__}: building the person of {video.name} failed: {error}"
    return profiles, errors


def _profile_matches(folder: Path, clip: Path) -> bool:
    """A finished profile (refiner included) made from exactly this clip."""
    try:
        info = json.loads((folder / "profile.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("source", {}).get("sha256") == file_digest(clip) and (folder / "refiner.json").exists()


# -- resume -----------------------------------------------------------------------------------
def _job_key(job: Job, profile: Path) -> str:
    """Same inputs, same options, same profile -> same key."""
    digest = hashlib.sha256()
    for name in ("profile.json", "refiner.json"):
        path = profile / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    digest.update(file_digest(job.audio).encode() if job.audio.is_file() else str(job.audio).encode())
    if job.video is not None:
        digest.update(file_digest(job.video).encode() if job.video.is_file() else str(job.video).encode())
    digest.update(json.dumps(job.options, sort_keys=True).encode())
    digest.update(__version__.encode())
    return digest.hexdigest()[:32]


def _finished(earlier: JobResult, job: Job) -> bool:
    return earlier.status in ("done", "skipped") and job.out.exists() and job.out.stat().st_size == earlier.out_bytes


def _previous_results(path: Path) -> dict[int, JobResult]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if data.get("format") != REPORT_FORMAT:
        return {}
    fields = set(JobResult.__dataclass_fields__)
    return {item["row"]: JobResult(**{k: v for k, v in item.items() if k in fields}) for item in data.get("jobs", [])}


def _save(path: Path, jobs: list[Job], results: dict[int, JobResult], previous: dict[int, JobResult], seconds: float, workers: int, backend: str) -> None:
    """The report so far: rows not yet run keep what the last run said of them."""
    rows = [results.get(job.row) or previous.get(job.row) for job in jobs]
    partial = BatchReport([r for r in rows if r is not None], seconds, workers, backend)
    write_json(path, partial.to_json())


# -- one job ----------------------------------------------------------------------------------
def run_job(job: Job, key: str, profile: str, device: str, threads: int | None = None) -> JobResult:
    """Render one row (in whatever process runs it); every failure becomes a result."""
    os.environ.setdefault("TALKFACE_QUIET", "1")
    if threads:
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    try:
        job.out.parent.mkdir(parents=True, exist_ok=True)
        if job.video is not None:
            from talkface.dub import dub

            result = dub(job.video, job.audio, job.out, profile, job.dub_config(), device)
        else:
            from talkface.speak import speak

            result = speak(job.audio, job.out, profile, job.speak_config(), device)
        return JobResult(
            job.row, str(job.person or ""), str(job.audio), str(job.out), "done", key,
            round(time.perf_counter() - started, 2), result.n_frames, out_bytes=job.out.stat().st_size, video=str(job.video or ""),
        )
    except TalkfaceError as error:
        return _failed(job, key, f"{type(error).__name__}: {error}", time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - one bad row must never stop the batch
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return _failed(job, key, f"internal error: {detail}", time.perf_counter() - started)


def _failed(job: Job, key: str, message: str, seconds: float = 0.0) -> JobResult:
    return JobResult(
        job.row, str(job.person or ""), str(job.audio), str(job.out), "failed", key, round(seconds, 2),
        error=message, error_type=message.split(":")[0], video=str(job.video or ""),
    )


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _run_serial(tasks, record) -> None:
    with progress.bar("batch", len(tasks)) as advance:
        for task in tasks:
            record(run_job(*task))
            advance(1)


def _run_processes(tasks, workers: int, record) -> None:
    threads = _threads(workers)
    context = get_context("spawn")  # a fresh interpreter per worker: no forked torch/mediapipe state
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool, progress.bar("batch", len(tasks)) as advance:
        futures = {pool.submit(run_job, *task, threads): task for task in tasks}
        while futures:
            finished, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in finished:
                job = futures.pop(future)[0]
                try:
                    record(future.result())
                except Exception as error:  # noqa: BLE001 - a crashed worker fails its row only
                    record(_failed(job, "", f"worker crashed: {error}"))
                advance(1)


def _run_ray(tasks, address: str, workers: int, record) -> None:
    try:
        import ray
    except ImportError:
        raise DependencyError("--ray needs the ray package: pip install 'talkface[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        options = {"address": None if address == "local" else address, "include_dashboard": False, "log_to_driver": False}
        if address == "local":
            options["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise DependencyError(f"cannot reach the Ray cluster at {address}: {error}") from None
    threads = _threads(workers)
    remote = ray.remote(num_cpus=threads, max_retries=0)(run_job)
    try:
        with progress.bar("batch (ray)", len(tasks)) as advance:
            futures = {remote.remote(*task, threads): task for task in tasks}
            while futures:
                finished, _ = ray.wait(list(futures), num_returns=1)
                job = futures.pop(finished[0])[0]
                try:
                    record(ray.get(finished[0]))
                except Exception as error:  # noqa: BLE001 - a lost task fails its row only
                    record(_failed(job, "", f"ray task failed: {error}"))
                advance(1)
    finally:
        if started_here:
            ray.shutdown()
