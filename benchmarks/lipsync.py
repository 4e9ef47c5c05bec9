"""Benchmark: lips and head motion on people the models never saw.

Needs `python scripts/corpus.py` and `python scripts/train_lips.py` first (the corpus cache,
the leave-speakers-out scores and the fold networks in out/). Reports:

1. leave-speakers-out on the corpus (zero-shot): the corpus ridge and the generic network,
   mouth-opening r and amplitude ratio per speaker, mean and worst;
2. people with long clips, finetuned on the first part and tested on the rest, with a
   generic network that never saw them: today's model (ridge + 6-clip prior), the generic
   model alone and generic + personal: mouth r, amplitude, best lag, closures, silence;
   head-motion spread ratio and pose-energy correlation;
3. every language in ../shared/data/audio spoken by the congressman_d profile;
4. pictures: predicted against real mouth opening for two speakers, rendered frames.

Writes benchmarks/results/lipsync.md, lipsync.json, lipsync_opening.png, lipsync_frames.jpg.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TALKFACE_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from talkface import __version__  # noqa: E402
from talkface.audio import extract  # noqa: E402
from talkface.config import FinetuneConfig, SpeakConfig  # noqa: E402
from talkface.evaluate.metrics import head_speed_loudness_r, speech_envelope  # noqa: E402
from talkface.face.fit import fit_clip  # noqa: E402
from talkface.face.tracker import track_video  # noqa: E402
from talkface.finetune import finetune  # noqa: E402
from talkface.media import Audio, load_audio, read_frames, write_audio, write_video  # noqa: E402
from talkface.motion.generic import GenericLipModel  # noqa: E402
from talkface.motion.lips import expression_from_lips, frontal_mouth_opening, lip_offsets  # noqa: E402
from talkface.motion.model import ADAPTED_WEIGHT, AUDIO_RADIUS, generate_motion, shift_features  # noqa: E402
from talkface.motion.ridge import Ridge, choose_alpha, stack_context  # noqa: E402
from talkface.signals import best_lag, pearson  # noqa: E402
from talkface.speak import speak  # noqa: E402

from report import RESULTS, markdown_table, save_results  # noqa: E402
from train_lips import closure_recall  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "out"
FPS = 25
# (clip, person in the corpus cache, seconds to finetune on); the rest of each clip is the test
PEOPLE = [
    (DATA / "video" / "congressman_d_60s.mp4", "congressman_d", 20),
    (DATA / "corpus" / "jim_acosta_cnn_dfrf_cnn2.mp4", "TV news anchor", 20),
    (DATA / "video" / "obama_weekly_20s.mp4", "barack_obama", 13),
    (DATA / "corpus" / "german_man_newsdesk_mimictalk_german20s.mp4", "German man in suit", 13),
    (DATA / "corpus" / "young_man_white_tshirt_latentsync_demo3.mp4", "young man in white T-shirt seated", 13),
]
PRIOR_CLIPS = ["congressman_c_8s", "obama_crop256_clip1", "obama_crop256_clip2", "obama_weekly_20s", "senator_a_8s", "senator_b_8s"]
SILENCE_DB = 35  # frames this far below the clip's loudest are silence


def generic_without(person: str) -> GenericLipModel:
    """The shipped model if it never saw `person`, else the cross-validation fold that left them out."""
    shipped = GenericLipModel.load()
    if person in shipped.meta.get("excluded_people", []):
        return shipped
    for path in sorted((OUT / "lips_folds").glob("fold*.safetensors")):
        model = GenericLipModel.load(path)
        if person in model.meta["held_out_people"]:
            return model
    raise SystemExit(f"no generic model left {person} out; run scripts/train_lips.py first")


def split_clip(video: Path, seconds: int, folder: Path) -> tuple[Path, Path]:
    frames, audio = read_frames(video), load_audio(video)
    cut = seconds * FPS
    train = write_video(folder / f"{video.stem}_train.mp4", itertools.islice(frames, cut), FPS, Audio(audio.samples[: seconds * 16000], 16000))
    test = write_video(folder / f"{video.stem}_test.mp4", frames, FPS, Audio(audio.samples[seconds * 16000 :], 16000))
    return train, test


def todays_model(profile, train_features: np.ndarray):
    """The model before this change: a ridge prior trained on the 6 other video clips (lip
    offsets from +-0.2 s of features), feeding a personal ridge on prior + audio."""
    clips = [np.load(OUT / "corpus" / f"{name}.npz") for name in PRIOR_CLIPS]
    x = np.concatenate([stack_context(np.concatenate([c["mfcc"], c["whisper"]], 1).astype(np.float32), 5)[c["valid"]] for c in clips])
    prior = Ridge.fit(x, np.concatenate([c["lips"][c["valid"]] for c in clips]), 1e4)

    def inputs(features):
        return np.concatenate([stack_context(prior.predict(stack_context(features, 5)), 2), stack_context(features, AUDIO_RADIUS)], 1)

    fit = profile.clip_fit
    x, y = inputs(train_features)[fit.valid], fit.expression[fit.valid].astype(np.float64)
    personal = Ridge.fit(x, y, choose_alpha(x, y, (1e2, 3e2, 1e3, 3e3, 1e4, 3e4)))
    return lambda features: personal.predict(inputs(features))


def mouth_row(name: str, face, predicted: np.ndarray, truth: np.ndarray, envelope: np.ndarray, clip_spread: float) -> dict:
    a, b = frontal_mouth_opening(face, predicted), frontal_mouth_opening(face, truth)
    lag, _ = best_lag(a, b, 6)
    low, high = np.percentile(b, [10, 90])
    closed_level = low + 0.1 * (high - low)
    silent = envelope < envelope.max() - SILENCE_DB
    return {
        "model": name,
        "mouth_r": round(pearson(a, b), 3),
        "amplitude": round(float(a.std() / b.std()), 2),
        "amplitude_vs_clip": round(float(a.std() / clip_spread), 2),
        "best_lag": lag,
        "closure_recall": round(closure_recall(a, b), 2),
        "silent_frames": int(silent.sum()),
        "open_in_silence_pred": round(float((a[silent] > closed_level + 0.5 * (high - low)).mean()), 2) if silent.any() else "",
        "open_in_silence_real": round(float((b[silent] > closed_level + 0.5 * (high - low)).mean()), 2) if silent.any() else "",
    }


def pose_rows(person: str, profile, features: np.ndarray, truth_pose: np.ndarray, envelope: np.ndarray) -> list[dict]:
    clip = np.degrees(profile.clip_fit.pose[profile.clip_fit.valid, :3])
    generated = [np.degrees(generate_motion(profile.motion, profile.face, features, FPS, seed=s).pose[:, :3]) for s in range(4)]
    real = np.degrees(truth_pose[:, :3])
    rows = []
    for index, angle in ((1, "yaw"), (0, "pitch")):
        spread = np.mean([g[:, index].std() for g in generated])
        rows.append({
            "person": person, "angle": angle,
            "clip_std_deg": round(float(clip[:, index].std()), 2),
            "test_real_std_deg": round(float(real[:, index].std()), 2),
            "generated_std_deg": round(float(spread), 2),
            "ratio_to_clip": round(float(spread / clip[:, index].std()), 2),
            "energy_r_real": round(head_speed_loudness_r(real, envelope), 2),
            "energy_r_generated": round(float(np.mean([head_speed_loudness_r(g, envelope) for g in generated])), 2),
        })
    return rows


def person_section(folder: Path):
    mouth, poses, curves, keep, ablation = [], [], {}, {}, []
    for video, person, seconds in PEOPLE:
        generic = generic_without(person)
        model_path = folder / f"generic_{video.stem}.safetensors"
        generic.save(model_path)
        train, test = split_clip(video, seconds, folder)
        start = time.perf_counter()
        profile = finetune(train, folder / f"p_{video.stem}", FinetuneConfig(refiner=False, generic_path=str(model_path)))
        finetune_s = time.perf_counter() - start
        test_track = track_video(test)
        truth = fit_clip(profile.face, test_track)
        test_audio = load_audio(test)
        features = extract(test_audio, "mfcc+whisper", test_track.n_frames)
        envelope = speech_envelope(test_audio.samples, 16000, FPS, test_track.n_frames)
        valid = truth.valid
        # the test part has the recording's own audio/video offset: today's model learns it from the
        # training part; the new models are trained in sync, so their audio is re-synced by the offset
        # finetune estimated on the training part (never on the test part)
        offset = profile.motion.offset_frames
        synced = shift_features(features, offset)
        train_features = extract(load_audio(train), "mfcc+whisper", len(profile.clip_fit.pose))
        predictions = {
            "today: ridge + 6-clip prior": (todays_model(profile, train_features)(features), None),
            "generic alone": (expression_from_lips(profile.face, generic.predict(synced)), generic.predict(features)),
            "generic + personal": (profile.motion.predict_expression(synced), profile.motion.predict_expression(features)),
        }
        real = truth.expression[valid].astype(np.float64)
        clip_spread = float(frontal_mouth_opening(profile.face, profile.clip_fit.expression[profile.clip_fit.valid]).std())
        for name, (predicted, unsynced) in predictions.items():
            row = mouth_row(name, profile.face, predicted[valid], real, envelope[valid], clip_spread)
            if unsynced is not None:
                unsynced = unsynced if unsynced.shape[1] == real.shape[1] else expression_from_lips(profile.face, unsynced)
                row["mouth_r_unsynced"] = round(pearson(frontal_mouth_opening(profile.face, unsynced[valid]), frontal_mouth_opening(profile.face, real)), 3)
            extra = {"finetune_s": round(finetune_s, 1), "recording_offset": offset, "generic_weight": profile.motion.generic_weight} if name == "generic + personal" else {}
            mouth.append({"person": f"{video.stem} ({int(valid.sum())} test frames)", **row, **extra})
        ablation.append(ablation_row(video.stem, profile, synced, real, valid))
        poses += pose_rows(video.stem, profile, features, truth.pose[valid], envelope[valid])
        curves[video.stem] = {k: frontal_mouth_opening(profile.face, v[0]) for k, v in predictions.items()}
        curves[video.stem]["real"] = frontal_mouth_opening(profile.face, np.nan_to_num(truth.expression))
        keep[video.stem] = (profile, test)
    return mouth, poses, curves, keep, ablation


def ablation_row(person: str, profile, synced: np.ndarray, real: np.ndarray, valid: np.ndarray) -> dict:
    """Mouth r of generic + personal with its parts changed: how far the lips move towards the
    adapted network (adapted_weight; shipped: ADAPTED_WEIGHT) and whether they are held from crossing."""
    truth = frontal_mouth_opening(profile.face, real)

    def r(**change) -> float:
        predicted = replace(profile.motion, **change).predict_expression(synced)[valid]
        return round(pearson(frontal_mouth_opening(profile.face, predicted), truth), 3)

    row = {"person": person, "ridge blend only": r(adapted_weight=0.0, closed_floor=None), "+ lips held from crossing": r(adapted_weight=0.0)}
    row.update({f"adapted_weight {w}": r(adapted_weight=w) for w in (0.3, 0.5, 0.7, 1.0)})
    return row


def language_section(profile, folder: Path) -> list[dict]:
    rows = []
    real = frontal_mouth_opening(profile.face, profile.clip_fit.expression[profile.clip_fit.valid])
    low, high = np.percentile(real, [10, 90])
    closed_level = low + 0.1 * (high - low)
    for audio_path in sorted((DATA / "audio").iterdir()):
        audio = load_audio(audio_path)
        features = extract(audio, "mfcc+whisper")
        opening = frontal_mouth_opening(profile.face, profile.motion.predict_expression(features))
        envelope = speech_envelope(audio.samples, 16000, FPS, len(features))
        silent = envelope < envelope.max() - SILENCE_DB
        rows.append({
            "audio": audio_path.name,
            "language": audio_path.stem.split("_")[0],
            "amplitude_vs_person": round(float(opening.std() / real.std()), 2),
            "closed_share": round(float((opening <= closed_level).mean()), 2),
            "closed_share_person_clip": round(float((real <= closed_level).mean()), 2),
            "silent_frames": int(silent.sum()),
            "closed_in_silence": round(float((opening[silent] <= closed_level + 0.2 * (high - low)).mean()), 2) if silent.any() else "",
        })
    return rows


def loso_section() -> tuple[list[dict], dict]:
    record = json.loads((OUT / "train_lips.json").read_text())
    rows = []
    for clip in sorted(record["per_clip"]["network"]):
        ridge, network = record["per_clip"]["ridge"][clip], record["per_clip"]["network"][clip]
        rows.append({"clip": clip, "ridge_r": round(ridge["r"], 3), "ridge_amplitude": round(ridge["amplitude"], 2),
                     "network_r": round(network["r"], 3), "network_amplitude": round(network["amplitude"], 2),
                     "network_closure": round(network["closure"], 2), "network_best_lag": network["best_lag"]})
    return rows, record["summary"]


def pictures(curves: dict, keep: dict, folder: Path) -> list[dict]:
    """The opening plot and the frame sheet; returns the lips measured in the rendered videos."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)[:2]
    figure, axes = plt.subplots(len(names), 1, figsize=(12, 3.2 * len(names)))
    for axis, name in zip(axes, names):
        seconds = np.arange(250) / FPS
        axis.plot(seconds, curves[name]["real"][:250], "k", lw=2, label="real")
        for label, style in (("today: ridge + 6-clip prior", ":"), ("generic + personal", "-")):
            axis.plot(seconds, curves[name][label][:250], style, label=label)
        axis.set_title(f"{name}: mouth opening, first 10 s of the held-out part")
        axis.set_xlabel("s")
        axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "lipsync_opening.png", dpi=80)
    # rendered frames at the most open and most closed predicted moments, beside the real frames
    tiles, rendered_rows = [], []
    for name in names:
        profile, test = keep[name]
        sound = load_audio(test)
        first_10s = write_audio(folder / f"{name}_10s.wav", Audio(sound.samples[: 10 * sound.sample_rate], sound.sample_rate))
        out = speak(first_10s, folder / f"speak_{name}.mp4", profile, SpeakConfig(refine=False))
        opening = frontal_mouth_opening(profile.face, out.motion.expression)
        rendered_rows.append(rendered_lips(name, folder / f"speak_{name}.mp4", test, out.motion, profile.motion.offset_frames))
        moments = [int(np.argmax(opening)), int(np.argmin(opening[25:]) + 25)]
        rendered, real = list(read_frames(folder / f"speak_{name}.mp4")), list(itertools.islice(read_frames(test), 250))
        for moment in moments:
            pair = [cv2.resize(image[moment], (256, 256)) for image in (rendered, real) if moment < len(image)]
            tiles.append(np.concatenate(pair, axis=1))
    sheet = np.concatenate([np.concatenate(tiles[i : i + 2], axis=1) for i in range(0, len(tiles), 2)], axis=0)
    cv2.imwrite(str(RESULTS / "lipsync_frames.jpg"), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    return rendered_rows


def rendered_lips(name: str, video: Path, test: Path, motion, offset: float) -> dict:
    """The mouth as a face tracker sees it in the rendered video, against the motion that drove it
    and against the real frames (the recording's own offset, a fraction of a frame, applied to them)."""
    from talkface.face import topology

    seen = topology.mouth_openness(track_video(video).landmarks)
    driven = topology.mouth_openness(motion.landmarks)
    real = topology.mouth_openness(track_video(test).landmarks)
    real = shift_features(real[:, None], -offset)[: len(seen), 0]  # frame t: the real mouth at t + offset
    n = min(len(seen), len(real))
    return {"person": name, "frames": len(seen), "rendered_vs_motion_r": round(pearson(seen, driven), 3),
            "rendered_vs_real_r": round(pearson(seen[:n], real[:n]), 3), "rendered_amplitude_vs_real": round(float(np.nanstd(seen) / np.nanstd(real)), 2)}


def main() -> None:
    started = time.perf_counter()
    loso_rows, loso_summary = loso_section()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        mouth, poses, curves, keep, ablation = person_section(folder)
        languages = language_section(keep["congressman_d_60s"][0], folder)
        rendered = pictures(curves, keep, folder)
    text = f"""# Lip sync and head motion on unseen people

talkface {__version__}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, {time.perf_counter() - started:.0f} s.
Commands: `python scripts/corpus.py && python scripts/train_lips.py && python benchmarks/lipsync.py`.

Mouth opening: inner-lip gap / mouth width, seen from the front in the person's face model. r: Pearson
at lag 0. amplitude: std of the predicted opening / std of the real one (amplitude_vs_clip: / std of
the person's real opening in the part of the clip the model was finetuned on). best_lag: the shift (frames)
at which prediction and truth match best (0 = in sync). closure_recall: share of real closures
(opening in the real lowest 10%) that the prediction also closes (at or below the real 10th percentile
+ 10% of the 10-90 range) within +-2 frames. Silence: frames {SILENCE_DB} dB below the clip's loudest.

## 1. Leave-speakers-out on the corpus (zero-shot, no personal model)

People grouped into folds, never split; ridge: +-0.2 s of the features' 160 principal components
(the corpus ridge of the issue, made cheaper); network: the shipped architecture.

| model | mean r | worst r | mean amplitude | worst amplitude | mean closure recall |
|---|---|---|---|---|---|
""" + "\n".join(f"| {k} | {v['mean_r']} | {v['worst_r']} | {v['mean_amplitude']} | {v['worst_amplitude']} | {v['mean_closure']} |" for k, v in loso_summary.items()) + f"""

<details><summary>per clip</summary>

{markdown_table(loso_rows)}

</details>

## 2. Finetuned on the first part of a clip, tested on the rest (people the generic model never saw)

generic + personal: the personal ridge blended with the generic lips, its lips moved halfway to those of the
generic network finetuned on the person's clip (ADAPTED_WEIGHT) and never past the person's closed mouth.
Each recording carries its own audio/video offset (recording_offset: frames, estimated by `finetune` on
the training part against the corpus consensus). Today's model learns that offset from the training part
and is scored as it runs. The new models are trained in sync, so they are scored with the test audio
re-synced by the training part's offset; mouth_r_unsynced scores them against the raw recording instead.

{markdown_table(mouth)}

Ablation (mouth r, test audio re-synced): the ridge blend alone, with the lips held from passing each
other further than the person's did, and moved some of the way to the adapted network's lips (shipped: {ADAPTED_WEIGHT}).

{markdown_table(ablation)}

Head motion (generic + personal, mean of 4 seeds): spread of generated yaw/pitch against the
person's training clip; energy_r: correlation of head speed with speech loudness (0.5 s smoothing).

{markdown_table(poses)}

## 3. Every language (congressman_d profile)

amplitude_vs_person: std of predicted opening / std of the person's real opening in their clip;
closed_share: frames at the person's closed level (their own clip: closed_share_person_clip).

{markdown_table(languages)}

## 4. In the rendered video

`speak --no-refine` on the first 10 s of the held-out audio, the output tracked by the face tracker like any
video: its mouth opening against the motion that drove it and against the real frames.

{markdown_table(rendered)}

## 5. Pictures

- `lipsync_opening.png`: predicted against real mouth opening, 10 s, two speakers.
- `lipsync_frames.jpg`: `speak --no-refine` on the first 10 s of the held-out audio (left of each pair) and the real frame
  (right), at the most open and a closed predicted moment, two speakers.
"""
    save_results("lipsync", text, {"loso": loso_summary, "loso_per_clip": loso_rows, "people": mouth, "ablation": ablation, "pose": poses, "languages": languages, "rendered": rendered})


if __name__ == "__main__":
    main()
