"""Batch manifests: CSV, JSONL, or a folder of people and audio, read into jobs.

A manifest row names a `person` (a profile folder, or a clip to finetune once and share; the
column may also be called `profile`), an
`audio` file and an `out` video; optional columns set that row's speak options (`pose`, `seed`,
`blink_rate`, `refine`, `crf`). A row with a `video` is a dub of that footage (`person` optional: by
default a profile is built from the video), with the dub options `fit`, `mouth_scale`, `crf`
and `refine`. Relative paths are taken from the manifest's folder.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from talkface.config import DubConfig, SpeakConfig
from talkface.errors import InputError

REQUIRED = ("person", "audio", "out")  # a dub row: video instead of person (person optional)
SPEAK_OPTIONS = {"pose": str, "seed": int, "blink_rate": float}
DUB_OPTIONS = {"fit": str, "mouth_scale": float}
OPTIONS = {**SPEAK_OPTIONS, **DUB_OPTIONS, "refine": bool, "crf": int}  # refine and crf: both kinds
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".m4a", ".ogg", ".aac"} | VIDEO_SUFFIXES


@dataclass(frozen=True)
class Job:
    """One line to render: `row` is its 1-based position in the manifest; with `video`, a dub
    (`person` then optional)."""

    row: int
    person: Path | None
    audio: Path
    out: Path
    options: dict = field(default_factory=dict)
    video: Path | None = None
    problem: str = ""  # what is wrong with the row (it is reported failed, the others run)

    def speak_config(self) -> SpeakConfig:
        return SpeakConfig(**self.options)

    def dub_config(self, preset: str = DubConfig.preset) -> DubConfig:
        return DubConfig(**self.options, preset=preset)


def read_manifest(path: str | Path) -> list[Job]:
    """Jobs from a .csv or .jsonl manifest, or from a folder holding people/ and audio/.

    The folder convention: every audio file in audio/ is said by every person in people/
    (profile folders or clips), written to out/PERSON/AUDIO.mp4.

    A row that cannot run (a missing column, a bad option value, a line that is not JSON) is
    still a Job, with `problem` saying what is wrong and how to fix it: the batch reports it as
    failed and runs the other rows.

    Raises:
        InputError: no such manifest, not a readable CSV/JSONL file, no rows at all.
    """
    path = Path(path)
    if path.is_dir():
        return _folder_jobs(path)
    if not path.exists():
        raise InputError(f"no batch manifest at {path}: give a .csv or .jsonl file, or a folder with people/ and audio/")
    if not path.is_file():
        raise InputError(f"the batch manifest {path} is not a regular file; give a .csv or .jsonl file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path} is not UTF-8 text (byte {error.start} is not); save the manifest as UTF-8 .csv or .jsonl") from None
    if "\x00" in text:
        raise InputError(f"{path} holds NUL bytes: it is not a text manifest; save it as UTF-8 .csv or .jsonl")
    if path.suffix.lower() == ".csv":
        try:
            records = [(number, record) for number, record in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=1)]
        except csv.Error as error:
            raise InputError(f"{path} is not a readable CSV ({error})") from None
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    records.append((number, _NotJson(f"{path.name}, line {number}: not JSON ({error.msg}); each line must be one JSON object")))
    else:
        raise InputError(f"{path}: a manifest must be .csv or .jsonl (or a folder with people/ and audio/)")
    if not records:
        raise InputError(f"{path} has no jobs")
    return [_job_or_problem(path, number, record) for number, record in records]


class _NotJson(str):
    """A JSONL line that did not parse, as its problem."""


def _job_or_problem(manifest: Path, row: int, record) -> Job:
    """The row's Job, or for a row that cannot run a Job carrying its problem (and whatever
    paths it names, for the report)."""
    try:
        if isinstance(record, _NotJson):  # a line that did not parse (a line that is a JSON string is not an object: _job says so)
            raise InputError(str(record))
        return _job(manifest, row, record)
    except InputError as error:
        named = record if isinstance(record, dict) else {}
        path = lambda name: Path(str(named.get(name) or "").strip())  # noqa: E731
        video = path("video") if str(named.get("video") or "").strip() else None
        person = path("person") if str(named.get("person") or "").strip() else (path("profile") if str(named.get("profile") or "").strip() else None)
        return Job(row, person, path("audio"), path("out"), video=video, problem=str(error))


def _job(manifest: Path, row: int, record: dict) -> Job:
    where = f"{manifest.name}, row {row}"
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected an object with {', '.join(REQUIRED)}")
    if "profile" in record:  # another name for person, as on the command line
        record = dict(record)
        profile = record.pop("profile")
        if str(record.get("person") or "").strip() and str(profile or "").strip():
            raise InputError(f"{where}: both person and profile are given; profile is another name for person, give one")
        if str(profile or "").strip() or "person" not in record:
            record["person"] = profile
    is_dub = bool(str(record.get("video") or "").strip())
    required = ("video", "audio", "out") if is_dub else REQUIRED
    missing = [name for name in required if not str(record.get(name) or "").strip()]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)} (every row needs {', '.join(REQUIRED)}, or video, audio, out for a dub)")
    if None in record:  # csv.DictReader files fields beyond the header under None
        raise InputError(f"{where}: more fields than the header has columns ({', '.join(REQUIRED)} and options); quote values that hold commas")
    unknown = {str(key) for key in record} - set(REQUIRED) - {"video"} - set(OPTIONS)
    if unknown:
        raise InputError(f"{where}: unknown column(s) {', '.join(sorted(unknown))}; options are {', '.join(OPTIONS)}")
    options = {}
    for name, kind in OPTIONS.items():
        value = record.get(name)
        if value is None or str(value).strip() == "":
            continue
        try:
            options[name] = _parse(value, kind)
        except (ValueError, TypeError, OverflowError):
            raise InputError(f"{where}: {name}={value!r} is not a valid {kind.__name__}") from None
    wrong = sorted(set(options) & set(SPEAK_OPTIONS if is_dub else DUB_OPTIONS))
    if wrong:
        kind, allowed = ("a dub row (it has a video)", DUB_OPTIONS) if is_dub else ("a speak row (it has no video)", SPEAK_OPTIONS)
        raise InputError(f"{where}: {', '.join(wrong)} cannot be set in {kind}; its options are {', '.join([*allowed, 'refine', 'crf'])}")
    try:
        (DubConfig(**options) if is_dub else SpeakConfig(**options)).check()
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    base = manifest.parent
    resolve = lambda value: (base / Path(str(value).strip()).expanduser()).resolve()  # noqa: E731
    person = resolve(record["person"]) if str(record.get("person") or "").strip() else None
    video = resolve(record["video"]) if is_dub else None
    return Job(row, person, resolve(record["audio"]), resolve(record["out"]), options, video)


def _parse(value, kind):
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    return kind(value)


def _folder_jobs(folder: Path) -> list[Job]:
    people_dir, audio_dir = folder / "people", folder / "audio"
    if not people_dir.is_dir() or not audio_dir.is_dir():
        raise InputError(f"{folder} is a folder but has no people/ and audio/ sub-folders; give a .csv or .jsonl manifest instead")
    people = sorted(p for p in people_dir.iterdir() if (p / "profile.json").exists() or p.suffix.lower() in VIDEO_SUFFIXES)
    audios = sorted(a for a in audio_dir.iterdir() if a.is_file() and a.suffix.lower() in AUDIO_SUFFIXES)
    if not people or not audios:
        raise InputError(f"{folder}: people/ needs clips or profile folders and audio/ needs audio files")
    jobs = []
    for person in people:
        for audio in audios:
            jobs.append(Job(len(jobs) + 1, person.resolve(), audio.resolve(), (folder / "out" / person.stem / f"{audio.stem}.mp4").resolve()))
    return jobs
