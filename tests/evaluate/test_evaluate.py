"""`evaluate` end to end on real clips: itself, a shifted copy, another person, no face, reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkface.errors import DependencyError, InputError, NoFaceError
from talkface.evaluate import evaluate
from talkface.evaluate.identity import SAME_PERSON_DISTANCE, face_embedding, identity_distance
from talkface.face.tracker import FaceMeshTracker
from talkface.media import read_frames, write_video

OTHER = Path(__file__).parents[1] / "data" / "other_person_2s.mp4"


@pytest.fixture(scope="module")
def against_itself(clip, tmp_path_factory):
    return evaluate(clip, clip, report=tmp_path_factory.mktemp("report"))


def test_a_clip_against_itself_is_perfect(against_itself):
    c = against_itself.comparison
    assert c.n_frames_compared == 75
    assert c.psnr_full == c.psnr_face == 100.0
    assert c.ssim_full == pytest.approx(1.0) and c.ssim_face == pytest.approx(1.0)
    assert c.m_lmd == 0.0 and c.f_lmd == 0.0
    assert c.mouth_opening_r == pytest.approx(1.0)
    assert all(v == 0.0 for v in c.pose_error_deg.values())
    assert all(v == pytest.approx(1.0) for v in c.pose_r.values())
    assert c.identity_distance == pytest.approx(0.0)
    assert c.time_offset_frames == 0
    assert against_itself.generated.face_detection_rate == 1.0


def test_report_files(against_itself):
    import cv2

    folder = Path(against_itself.report)
    sheet = cv2.imread(str(folder / "contact_sheet.png"))
    curves = cv2.imread(str(folder / "curves.png"))
    assert sheet is not None and sheet.shape[0] >= 2 * 240 and sheet.shape[1] > 6 * 200
    assert curves is not None and curves.shape[1] > 800


def test_json_has_no_nan(against_itself):
    import json

    text = json.dumps(against_itself.to_json(), allow_nan=False)
    assert '"psnr_full": 100.0' in text


def test_a_copy_three_frames_late_is_measured_as_three_frames_late(clip, clip_frames, tmp_path):
    late = write_video(tmp_path / "late.mp4", [clip_frames[0]] * 3 + clip_frames[:-3])
    result = evaluate(late, clip)
    assert result.comparison.time_offset_frames == 3
    assert result.comparison.psnr_full < 40


def test_another_person_is_far_in_identity(clip):
    frames = {}
    for name, path in (("obama", clip), ("other", OTHER)):
        embeddings = []
        with FaceMeshTracker() as tracker:
            for index, frame in enumerate(read_frames(path)):
                if index % 10 == 0:
                    embeddings.append(face_embedding(frame, tracker.process(frame)[0]))
                else:
                    tracker.process(frame)
        frames[name] = embeddings
    assert identity_distance(frames["obama"][:3], frames["obama"][3:]) < 0.3
    assert identity_distance(frames["obama"], frames["other"]) > SAME_PERSON_DISTANCE


def test_without_dlibs_models_identity_is_left_out_and_the_rest_stands(clip, monkeypatch):
    # dlib's face models are an optional install; a machine without them still evaluates
    import talkface.evaluate.scan as scan

    def missing():
        raise DependencyError("identity metrics need dlib's face models")

    monkeypatch.setattr(scan, "models_folder", missing)
    c = evaluate(clip, clip).comparison
    assert c.identity_distance is None
    assert c.psnr_face == 100.0 and c.mouth_opening_r == pytest.approx(1.0)


def test_reference_free_metrics(clip):
    result = evaluate(clip)
    g = result.generated
    assert result.comparison is None and result.reference is None
    assert g.face_detection_rate == 1.0
    assert g.av_offset_frames is not None and abs(g.av_offset_frames) <= 15 and g.av_sync_peak > 0
    assert 0 < g.pose_std_deg["yaw"] < 10
    assert g.landmark_jitter > 0 and g.mouth_sharpness > 0


def test_av_offset_reads_a_known_delay_of_the_picture(clip_audio):
    """The A/V offset is the lag between the speech envelope and mouth opening (+: picture late).
    Real mouths lead the sound by a varying amount (too ambiguous on a 3 s clip to assert an
    absolute value), so a mouth made from the clip's own envelope, 4 frames late, must read +4."""
    from talkface.evaluate import metrics
    from talkface.evaluate.run import MAX_LAG

    envelope = metrics.speech_envelope(clip_audio.samples, clip_audio.sample_rate, 25, 75)
    mouth = np.concatenate([np.full(4, envelope[0]), envelope[:-4]])
    assert metrics.best_lag(envelope, mouth, MAX_LAG)[0] == 4
    assert metrics.best_lag(envelope, np.concatenate([envelope[3:], np.full(3, envelope[-1])]), MAX_LAG)[0] == -3


def test_different_lengths_are_refused(clip, clip_frames, tmp_path):
    short = write_video(tmp_path / "short.mp4", clip_frames[:40])
    with pytest.raises(InputError, match="same length"):
        evaluate(short, clip)


def test_generated_video_without_a_face(no_face_video):
    with pytest.raises(NoFaceError):
        evaluate(no_face_video)


def test_silent_video_has_no_av_metrics(clip_frames, tmp_path):
    silent = write_video(tmp_path / "silent.mp4", clip_frames)
    result = evaluate(silent)
    assert result.generated.av_offset_frames is None and result.generated.av_sync_peak is None
    assert np.isfinite(result.generated.landmark_jitter)
