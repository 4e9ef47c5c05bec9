"""Benchmark: bad inputs and outputs through the real CLI, counted by how each run ends.

Every case is made here from the shipped test clip (truncated, empty, garbage, NaN, pipes,
zip bombs, damaged profiles, hostile manifests, impossible outputs) and run as a user would
(`python -m talkface ...`, 120 s limit). A run ends in a typed error (one `error:` line, exit
2), a traceback, a hang, or success (for inputs that are odd but valid). Inputs are hashed
before and after: none may change. Also measures peak memory of audio featurisation for 1,
10 and 60 minutes of audio. Writes benchmarks/results/hardening.md and hardening.json.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from talkface import __version__  # noqa: E402
from talkface.config import FinetuneConfig  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import Audio, load_audio, read_frames, write_audio, write_video  # noqa: E402
from talkface.motion.io import Motion, save_motion  # noqa: E402
from talkface.storage import save_npz  # noqa: E402

from report import markdown_table, save_results  # noqa: E402
from tests.bad_media import faststart_copy, float_wav  # noqa: E402

CLIP = ROOT / "tests" / "data" / "obama_3s.mp4"
LIMIT = 120  # seconds before a run counts as hung


def cli(*args: str) -> tuple[str, str]:
    env = {**os.environ, "TALKFACE_QUIET": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "talkface", *args], capture_output=True, text=True, env=env, timeout=LIMIT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "hang", ""
    if "Traceback" in done.stderr:
        return "traceback", done.stderr.strip().splitlines()[-1]
    if done.returncode == 0:
        return "ok", ""
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    typed = done.returncode == 2 and lines and lines[0].startswith("error:")
    return ("typed error" if typed else f"exit {done.returncode}"), (lines[0][:160] if lines else "")


def make_cases(d: Path, profile: Path) -> list[tuple[str, str, list[str], str]]:
    """(class, case, CLI arguments, expected: 'error' or 'ok')."""
    audio = load_audio(CLIP)
    speech = write_audio(d / "speech.wav", audio)
    out = str(d / "out.mp4")
    cases: list[tuple[str, str, list[str], str]] = []

    def file(name: str, content: bytes) -> Path:
        path = d / name
        path.write_bytes(content)
        return path

    # videos for track
    fast = faststart_copy(CLIP, d / "fast.mp4")
    videos = {
        "missing": d / "nothing.mp4", "empty": file("empty.mp4", b""), "text": file("text.mp4", b"hello world\n" * 50),
        "random bytes": file("random.mp4", np.random.default_rng(0).bytes(200_000)), "folder": d,
        "cut at 5%": file("cut5.mp4", CLIP.read_bytes()[: CLIP.stat().st_size // 20]),
        "cut at 40%": file("cut40.mp4", CLIP.read_bytes()[: CLIP.stat().st_size * 2 // 5]),
        "faststart cut at 40%": file("fcut40.mp4", fast.read_bytes()[: fast.stat().st_size * 2 // 5]),
        "faststart cut at 70%": file("fcut70.mp4", fast.read_bytes()[: fast.stat().st_size * 7 // 10]),
        "audio only": speech,
    }
    os.mkfifo(d / "pipe.mp4")
    videos["named pipe"] = d / "pipe.mp4"
    for case, path in videos.items():
        cases.append(("video (track)", case, ["track", "--video", str(path), "--out", str(d / "t"), "--no-overlay"], "error"))
    # audio for speak
    samples = audio.samples.copy()
    samples[100:110] = np.nan
    inf = audio.samples.copy()
    inf[500] = np.inf
    os.mkfifo(d / "pipe.wav")
    audios = {
        "missing": d / "none.wav", "empty": file("empty.wav", b""), "text": file("text.wav", b"RIFF nonsense"),
        "NaN samples": float_wav(d / "nan.wav", samples), "infinite sample": float_wav(d / "inf.wav", inf),
        "silent": write_audio(d / "silent.wav", Audio(np.zeros(32000, np.float32), 16000)),
        "0.2 s": write_audio(d / "short.wav", Audio(audio.samples[:3200], 16000)),
        "mp3 cut at 30%": file("cut.mp3", (b := write_audio(d / "whole.mp3", audio).read_bytes())[: len(b) * 3 // 10]),
        "video without sound": write_video(d / "mute.mp4", itertools.islice(read_frames(CLIP), 10)), "named pipe": d / "pipe.wav", "folder": d,
    }
    for case, path in audios.items():
        # an mp3 has no index: a cut one is a shorter, valid file (its decodable part is spoken)
        expected = "ok" if case.startswith("mp3") else "error"
        cases.append(("audio (speak)", case, ["speak", "--audio", str(path), "--person", str(profile), "--out", out, "--no-refine"], expected))
    # output locations
    blocker = file("blocker", b"x")
    for case, target in {"a folder": str(d), "the input audio": str(speech), "below a file": str(blocker / "o.mp4"),
                         "name of 300 bytes": str(d / ("n" * 296 + ".mp4"))}.items():
        cases.append(("output (speak)", case, ["speak", "--audio", str(speech), "--person", str(profile), "--out", target], "error"))
    # user paths that look like markup, unicode and spaces: valid, must work
    odd = d / "[bold]odd [red] é 名.wav"
    odd.write_bytes(speech.read_bytes())
    cases.append(("paths", "brackets, spaces, unicode (valid)", ["speak", "--audio", str(odd), "--person", str(profile), "--out", str(d / "[x] é.mp4"), "--no-refine"], "ok"))
    cases.append(("paths", "missing file named [/]", ["speak", "--audio", str(d / "[/]gone.wav"), "--person", str(profile), "--out", out], "error"))
    # motion files for render
    rng = np.random.default_rng(1)
    good = Motion(rng.normal(size=(10, 4)).astype(np.float32), rng.normal(size=(10, 6)).astype(np.float32), rng.normal(size=(10, 478, 3)).astype(np.float32), 25.0)
    base = {"expression": good.expression, "pose": good.pose, "landmarks": good.landmarks, "fps": np.float32(25)}
    motions = {"fps NaN": {**base, "fps": np.float32(np.nan)}, "fps 0": {**base, "fps": np.float32(0)}, "fps 1e9": {**base, "fps": np.float32(1e9)},
               "0 frames": {k: (v[:0] if k != "fps" else v) for k, v in base.items()}, "NaN inside frames": {**base, "pose": np.where(np.arange(6) == 1, np.nan, base["pose"]).astype(np.float32)},
               "no landmarks": {k: v for k, v in base.items() if k != "landmarks"}}
    for case, arrays in motions.items():
        save_npz(d / f"m_{len(cases)}.npz", **arrays)
        cases.append(("motion (render)", case, ["render", "--motion", str(d / f"m_{len(cases)}.npz"), "--person", str(profile), "--out", out], "error"))
    bomb = d / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("landmarks.npy", "w", force_zip64=True) as member:
        header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), np.float32))
        header["shape"] = (1 << 30,)
        np.lib.format.write_array_header_1_0(member, header)
        for _ in range(256):
            member.write(bytes(1 << 24))
    for case, path in {"zip bomb (4 GiB in 4 MB)": bomb, "garbage": file("g.npz", b"garbage"), "empty": file("e.npz", b"")}.items():
        cases.append(("motion (render)", case, ["render", "--motion", str(path), "--person", str(profile), "--out", out], "error"))
    # damaged profiles
    for case, (name, content) in {"profile.json not JSON": ("profile.json", b"{"), "profile.json a list": ("profile.json", b"[]"),
                                  "motion.npz garbage": ("motion.npz", b"x"), "fit.npz empty": ("fit.npz", b""),
                                  "reference.png garbage": ("reference.png", b"x"), "model.npz truncated": ("model.npz", None)}.items():
        broken = d / f"profile_{len(cases)}"
        broken.mkdir()
        for item in profile.iterdir():
            if item.is_file():
                (broken / item.name).write_bytes(item.read_bytes())
        target = broken / name
        target.write_bytes(content if content is not None else target.read_bytes()[:100])
        cases.append(("profile (speak)", case, ["speak", "--audio", str(speech), "--person", str(broken), "--out", out], "error"))
    # dub: bad footage, bad audio, bad outputs, bad settings
    for case in ("missing", "cut at 40%", "faststart cut at 70%", "random bytes", "named pipe", "audio only"):
        cases.append(("dub", f"video: {case}", ["dub", "--video", str(videos[case]), "--audio", str(speech), "--person", str(profile), "--out", out, "--no-refine"], "error"))
    for case in ("NaN samples", "silent", "empty", "named pipe"):
        cases.append(("dub", f"audio: {case}", ["dub", "--video", str(CLIP), "--audio", str(audios[case]), "--person", str(profile), "--out", out, "--no-refine"], "error"))
    no_face = write_video(d / "no_face.mp4", (f[:120, :120] for f in itertools.islice(read_frames(CLIP), 30)))
    cases.append(("dub", "video without a face", ["dub", "--video", str(no_face), "--audio", str(speech), "--person", str(profile), "--out", out], "error"))
    cases.append(("dub", "video without sound, no person", ["dub", "--video", str(d / "mute.mp4"), "--audio", str(speech), "--out", out], "error"))
    cases.append(("dub", "--out is the video", ["dub", "--video", str(fast), "--audio", str(speech), "--person", str(profile), "--out", str(fast)], "error"))
    for option, value in (("--fit", "bounce"), ("--mouth-scale", "nan"), ("--crf", "99"), ("--preset", "huge")):
        cases.append(("dub", f"{option} {value}", ["dub", "--video", str(CLIP), "--audio", str(speech), "--person", str(profile), "--out", out, option, value], "error"))
    longer = write_audio(d / "[6 s] speech.wav", Audio(np.concatenate([audio.samples, audio.samples[::-1]]), audio.sample_rate))
    cases.append(("dub", "audio twice the video's length (valid)", ["dub", "--video", str(CLIP), "--audio", str(longer), "--person", str(profile), "--out", str(d / "dub_ok.mp4"), "--no-refine", "--fit", "pingpong"], "ok"))
    # manifests
    manifests = {"UTF-16": ("jobs.csv", "person,audio,out\np,a.wav,o.mp4\n".encode("utf-16")), "binary": ("bin.csv", bytes(range(256)) * 8),
                 "extra fields": ("x.csv", b"person,audio,out\np,a.wav,o.mp4,1,2\n"), "seed -1": ("s.csv", b"person,audio,out,seed\np,a.wav,o.mp4,-1\n"),
                 "blink_rate nan": ("b.csv", b"person,audio,out,blink_rate\np,a.wav,o.mp4,nan\n"), "empty": ("empty.csv", b""),
                 "JSONL not objects": ("j.jsonl", b"[1]\n"), "JSONL broken": ("k.jsonl", b"{\"person\": \n"),
                 "dub row with a speak option": ("d.csv", b"video,audio,out,pose\nv.mp4,a.wav,o.mp4,clip\n"),
                 "dub row with crf 99": ("c.csv", b"video,audio,out,crf\nv.mp4,a.wav,o.mp4,99\n")}
    for case, (name, content) in manifests.items():
        cases.append(("manifest (batch)", case, ["batch", str(file(name, content))], "error"))
    return cases


def digest_all(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file() and not p.name.startswith("out") and p.suffix != ".partial"}


def memory_rows() -> list[dict]:
    rows = []
    script = (
        "import sys, resource, numpy as np\n"
        "from talkface.media import load_audio, Audio\n"
        "from talkface.audio import extract\n"
        f"x = load_audio({str(CLIP)!r}).samples\n"
        "n = int(float(sys.argv[1]) * 60 * 16000)\n"
        "f = extract(Audio(np.resize(x, n).astype(np.float32), 16000), 'mfcc+whisper')\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    for minutes in (1, 10, 60):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script, str(minutes)], capture_output=True, text=True)
        rows.append({"audio_minutes": minutes, "features_peak_rss_mb": done.stdout.strip() or done.stderr[-200:], "seconds": round(time.perf_counter() - started)})
    return rows


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        d = Path(scratch)
        profile = finetune(CLIP, d / "profile", FinetuneConfig(min_seconds=2.0, refiner=False)).folder
        cases = make_cases(d, profile)
        before = digest_all(d)
        rows = []
        for kind, case, args, expected in cases:
            outcome, message = cli(*args)
            rows.append({"class": kind, "case": case, "expected": expected, "outcome": outcome, "message": message.replace("|", "/").replace(str(d), "…")})
            print(f"{kind:18s} {case:32s} {outcome:12s} {message[:90]}", flush=True)
        after = digest_all(d)
        changed = sorted(name for name in before if after.get(name) != before[name])
        leftovers = sorted(p.name for p in d.rglob("*.partial"))
    summary = []
    for kind in dict.fromkeys(r["class"] for r in rows):
        mine = [r for r in rows if r["class"] == kind]
        summary.append({
            "class": kind, "cases": len(mine),
            "as expected": sum((r["outcome"] == "typed error") == (r["expected"] == "error") and r["outcome"] in ("typed error", "ok") for r in mine),
            "typed errors": sum(r["outcome"] == "typed error" for r in mine),
            "tracebacks": sum(r["outcome"] == "traceback" for r in mine), "hangs": sum(r["outcome"] == "hang" for r in mine),
        })
    memory = memory_rows()
    text = f"""# Hardening: bad inputs through the CLI

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {time.perf_counter() - started:.0f} s. Command: `python benchmarks/hardening.py`.

Every case is generated by the script from the shipped 3 s test clip and run as `python -m talkface ...`
with a {LIMIT} s limit. Inputs changed by any run: {len(changed)} {changed if changed else ''}; temporary `.partial`
files left behind: {len(leftovers)}.

{markdown_table(summary)}

## Every case

{markdown_table(rows)}

## Memory of audio featurisation (MFCC + Whisper) against audio length

{markdown_table(memory)}
"""
    save_results("hardening", text, {"summary": summary, "cases": rows, "inputs_changed": changed, "partials_left": leftovers, "memory": memory})


if __name__ == "__main__":
    main()
