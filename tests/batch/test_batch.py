"""Batch dubbing: manifests, per-row failures, resume, worker processes, a local Ray instance."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import talkface
from talkface.batch import Job, read_manifest, run_batch
from talkface.config import FinetuneConfig
from talkface.errors import InputError
from talkface.finetune import finetune
from talkface.media import Audio, probe, write_audio

RULES = FinetuneConfig(min_seconds=2.0, refiner=False)  # the shipped test clip is 3 s


@pytest.fixture(scope="module")
def person(clip, tmp_path_factory):
    return finetune(clip, tmp_path_factory.mktemp("person"), RULES).folder


@pytest.fixture(scope="module")
def lines(clip_audio, tmp_path_factory):
    """Two short real speech files, a missing one and an unreadable one."""
    folder = tmp_path_factory.mktemp("lines")
    rate = clip_audio.sample_rate
    first = write_audio(folder / "first.wav", Audio(clip_audio.samples[: rate], rate))
    second = write_audio(folder / "second.flac", Audio(clip_audio.samples[rate : int(1.8 * rate)], rate))
    broken = folder / "broken.wav"
    broken.write_bytes(b"RIFF this is not audio at all")
    return {"first": first, "second": second, "broken": broken, "missing": folder / "missing.wav"}


def manifest_problem(path) -> str:
    """The manifest's one row's problem; the manifest's own error if it has no rows to report."""
    jobs = read_manifest(path)
    assert len(jobs) == 1 and jobs[0].problem, "the row should have been refused"
    raise InputError(jobs[0].problem)


def write_csv(path, rows):
    path.write_text("person,audio,out,seed\n" + "".join(f"{p},{a},{o},{s}\n" for p, a, o, s in rows))
    return path


def test_csv_and_jsonl_manifests_resolve_paths_and_options(tmp_path):
    (tmp_path / "jobs.csv").write_text("person,audio,out,seed,refine,blink_rate\nbob,a.wav,out/1.mp4,3,no,0\n")
    (job,) = read_manifest(tmp_path / "jobs.csv")
    assert job.person == tmp_path / "bob" and job.out == tmp_path / "out" / "1.mp4"
    assert job.options == {"seed": 3, "refine": False, "blink_rate": 0.0}
    assert job.speak_config().seed == 3
    (tmp_path / "jobs.jsonl").write_text('{"person": "bob", "audio": "a.wav", "out": "o.mp4", "pose": "clip"}\n\n')
    (job,) = read_manifest(tmp_path / "jobs.jsonl")
    assert job.row == 1 and job.options == {"pose": "clip"}
    (tmp_path / "profiles.csv").write_text("profile,audio,out\nbob,a.wav,o.mp4\n")  # as on the command line
    (job,) = read_manifest(tmp_path / "profiles.csv")
    assert job.person == tmp_path / "bob"


@pytest.mark.parametrize(
    "text, message",
    [
        ("person,audio\nbob,a.wav\n", "row 1: missing out"),
        ("person,audio,out,seed\nbob,a.wav,o.mp4,three\n", "seed='three' is not a valid int"),
        ("person,audio,out,speed\nbob,a.wav,o.mp4,2\n", "unknown column.*speed"),
        ("person,audio,out\n", "has no jobs"),
        ("person,profile,audio,out\nbob,ann,a.wav,o.mp4\n", "both person and profile"),
    ],
)
def test_bad_manifests_are_refused_with_the_row_and_the_fix(tmp_path, text, message):
    (tmp_path / "jobs.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        manifest_problem(tmp_path / "jobs.csv")


def test_folder_convention_pairs_every_person_with_every_audio(tmp_path, person, lines):
    (tmp_path / "people").mkdir()
    (tmp_path / "audio").mkdir()
    (tmp_path / "people" / "anna").symlink_to(person)
    for name in ("first", "second"):
        (tmp_path / "audio" / lines[name].name).write_bytes(lines[name].read_bytes())
    jobs = read_manifest(tmp_path)
    assert [j.out.relative_to(tmp_path).as_posix() for j in jobs] == ["out/anna/first.mp4", "out/anna/second.mp4"]


def test_bad_rows_fail_alone_and_a_rerun_skips_finished_work(tmp_path, person, lines):
    manifest = write_csv(
        tmp_path / "jobs.csv",
        [
            (person, lines["first"], "out/a.mp4", 0),
            (person, lines["missing"], "out/b.mp4", 0),
            (person, lines["broken"], "out/c.mp4", 0),
            (tmp_path / "nobody", lines["first"], "out/d.mp4", 0),
            (person, lines["second"], "out/e.mp4", 1),
        ],
    )
    report = run_batch(manifest, workers=1)
    status = {r.row: r.status for r in report.results}
    assert status == {1: "done", 2: "failed", 3: "failed", 4: "failed", 5: "done"} and not report.ok
    errors = {r.row: r.error for r in report.results}
    assert "missing.wav" in errors[2] and "InputError" in errors[2]
    assert "broken.wav" in errors[3]
    assert "no such person" in errors[4]
    assert probe(tmp_path / "out" / "a.mp4").duration == pytest.approx(1.0, abs=0.1)
    saved = json.loads((tmp_path / "jobs.csv.report.json").read_text())
    assert saved["counts"] == {"done": 2, "skipped": 0, "failed": 3}
    assert not list((tmp_path / "out").glob("*.partial*")) and not (tmp_path / "out" / "b.mp4").exists()

    stamp = (tmp_path / "out" / "a.mp4").stat().st_mtime_ns
    again = run_batch(manifest, workers=1)
    assert [r.status for r in again.results] == ["skipped", "failed", "failed", "failed", "skipped"]
    assert (tmp_path / "out" / "a.mp4").stat().st_mtime_ns == stamp

    # a changed option or a deleted output is work to do again
    write_csv(manifest, [(person, lines["first"], "out/a.mp4", 5), (person, lines["second"], "out/e.mp4", 1)])
    (tmp_path / "out" / "e.mp4").unlink()
    third = run_batch(manifest, workers=1, report=tmp_path / "jobs.csv.report.json")
    assert [r.status for r in third.results] == ["done", "done"]


def test_two_worker_processes(tmp_path, person, lines):
    jobs = [Job(i, person, lines[name], tmp_path / f"{name}.mp4") for i, name in enumerate(("first", "second", "broken"), 1)]
    report = talkface.batch(jobs, workers=2, report=tmp_path / "r.json")
    assert [r.status for r in report.results] == ["done", "done", "failed"]
    assert report.backend == "2 local workers"


def test_the_same_manifest_runs_on_a_local_ray_instance(tmp_path, person, lines):
    pytest.importorskip("ray")
    manifest = write_csv(tmp_path / "jobs.csv", [(person, lines["first"], "a.mp4", 0), (person, lines["missing"], "b.mp4", 0)])
    report = run_batch(manifest, ray_address="local")
    assert [r.status for r in report.results] == ["done", "failed"] and report.backend.startswith("ray")
    assert probe(tmp_path / "a.mp4").duration == pytest.approx(1.0, abs=0.1)


def test_a_clip_too_short_to_finetune_fails_its_rows_only(tmp_path, clip, person, lines):
    manifest = write_csv(tmp_path / "jobs.csv", [(clip, lines["first"], "a.mp4", 0), (person, lines["first"], "b.mp4", 0)])
    report = run_batch(manifest, preset="draft")
    assert [r.status for r in report.results] == ["failed", "done"]
    assert "ClipTooShortError" in report.results[0].error and "at least 10 s" in report.results[0].error


def test_cli_prints_a_summary_and_exits_1_when_a_row_failed(tmp_path, person, lines):
    manifest = write_csv(tmp_path / "jobs.csv", [(person, lines["first"], "a.mp4", 0), (person, lines["missing"], "b.mp4", 0)])
    done = subprocess.run([sys.executable, "-m", "talkface", "batch", str(manifest)], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "1 done, 0 skipped, 1 failed" in done.stdout and "missing.wav" in done.stdout


def test_dub_rows_are_read_with_their_own_options(tmp_path):
    (tmp_path / "jobs.csv").write_text(
        "person,video,audio,out,fit,crf,mouth_scale,seed\n"
        ",talk.mp4,new.wav,out/d.mp4,loop,0,1.2,\n"
        "bob,,a.wav,out/s.mp4,,,,4\n"
    )
    dubbing, speaking = read_manifest(tmp_path / "jobs.csv")
    assert dubbing.video == tmp_path / "talk.mp4" and dubbing.person is None
    assert dubbing.options == {"fit": "loop", "crf": 0, "mouth_scale": 1.2} and dubbing.dub_config().fit == "loop"
    assert speaking.video is None and speaking.options == {"seed": 4}


def test_speak_rows_choose_their_output_quality_too(tmp_path):
    (tmp_path / "jobs.csv").write_text("person,audio,out,crf\nbob,a.wav,o.mp4,30\nbob,b.wav,p.mp4,\n")
    chosen, default = read_manifest(tmp_path / "jobs.csv")
    assert chosen.speak_config().crf == 30 and default.speak_config().crf == 17
    (tmp_path / "bad.csv").write_text("person,audio,out,crf\nbob,a.wav,o.mp4,99\n")
    with pytest.raises(InputError, match="crf"):
        manifest_problem(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    "text, message",
    [
        ("video,audio,out,pose\nv.mp4,a.wav,o.mp4,clip\n", "pose cannot be set in a dub row"),
        ("person,audio,out,fit\nbob,a.wav,o.mp4,loop\n", "fit cannot be set in a speak row"),
        ("video,audio,out,fit\nv.mp4,a.wav,o.mp4,bounce\n", "unknown --fit"),
        ("video,audio,out,crf\nv.mp4,a.wav,o.mp4,99\n", "crf"),
        ("video,audio,out\n,a.wav,o.mp4\n", "missing person"),
        ("video,audio,out\nv.mp4,,o.mp4\n", "missing audio"),
    ],
)
def test_bad_dub_rows(tmp_path, text, message):
    (tmp_path / "jobs.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        manifest_problem(tmp_path / "jobs.csv")


def test_a_batch_dubs_and_speaks(clip, person, lines, tmp_path):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(
        json.dumps({"video": str(clip), "person": str(person), "audio": str(lines["first"]), "out": "dub.mp4", "refine": False}) + "\n"
        + json.dumps({"person": str(person), "audio": str(lines["second"]), "out": "speak.mp4", "refine": False}) + "\n"
    )
    report = run_batch(manifest, workers=1)
    assert report.ok, [r.error for r in report.results]
    dubbed = report.results[0]
    assert dubbed.video == str(clip) and probe(tmp_path / "dub.mp4").duration == pytest.approx(1.0, abs=0.1)
    assert probe(tmp_path / "speak.mp4").has_video


def test_bad_rows_are_all_named_and_the_good_ones_run(person, lines, tmp_path):
    """A seed of -1 in one row and a blink rate of nan in another: both named at once in the
    report (field and value), the good rows rendered, exit status 1."""
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "person,audio,out,seed,blink_rate,refine\n"
        f"{person},{lines['first']},good1.mp4,1,,no\n"
        f"{person},{lines['first']},bad_seed.mp4,-1,,no\n"
        f"{person},{lines['second']},bad_blinks.mp4,,nan,no\n"
        f"{person},{lines['second']},good2.mp4,,,no\n"
    )
    run = subprocess.run([sys.executable, "-m", "talkface", "batch", str(manifest), "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    jobs = json.loads((tmp_path / "jobs.csv.report.json").read_text())["jobs"]
    assert [job["status"] for job in jobs] == ["done", "failed", "failed", "done"]
    assert "row 2: seed -1" in jobs[1]["error"] and "row 3: blink rate nan" in jobs[2]["error"]
    assert jobs[1]["error_type"] == jobs[2]["error_type"] == "InputError"
    assert jobs[1]["out"].endswith("bad_seed.mp4") and jobs[2]["audio"].endswith("second.flac")
    assert run.stdout.count("failed") >= 2 and "seed" in run.stdout and "blink" in run.stdout  # the table names them
    assert probe(tmp_path / "good1.mp4").has_video and probe(tmp_path / "good2.mp4").has_video
    assert not (tmp_path / "bad_seed.mp4").exists()
    # a JSONL line that is not JSON is one bad row too
    (tmp_path / "jobs.jsonl").write_text(json.dumps({"person": str(person), "audio": str(lines["first"]), "out": "j.mp4"}) + "\n{not json\n")
    good, broken = read_manifest(tmp_path / "jobs.jsonl")
    assert not good.problem and "line 2: not JSON" in broken.problem
    # and a line that is JSON but not an object (a string, an empty one too) is a bad row, not an empty job
    (tmp_path / "strings.jsonl").write_text('""\n"jobs.csv"\n[1, 2]\n')
    assert all("expected an object" in job.problem for job in read_manifest(tmp_path / "strings.jsonl"))
