"""Property-based fuzzing of what talkface parses: manifests, motion files and profiles.

The property is the same for each: any content either loads into a valid object or raises a
TalkfaceError (the CLI's one-line message), never another exception. Hypothesis shrinks a
failing input to a small example and prints it.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from talkface.errors import TalkfaceError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- manifests --------------------------------------------------------------------------------
COLUMNS = ["person", "audio", "out", "seed", "blink_rate", "pose", "pose_scale", "mouth_scale", "yaw", "refine", "extra"]
CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["nan", "inf", "-1", "1e40", "0", "3", "clip", "generated", "true", "", "[1]", '"', "\\", "a,b"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def csv_manifests(draw) -> bytes:
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=7))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=9), max_size=4))
    text = "\n".join([",".join(header)] + [",".join(row) for row in rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"]))
    return text.encode(encoding, errors="replace")


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(COLUMNS), inner, max_size=5)),
    max_leaves=12,
)


@st.composite
def jsonl_manifests(draw) -> bytes:
    lines = draw(st.lists(JSON_VALUES.map(lambda v: json.dumps(v, allow_nan=True)) | st.text(max_size=20), max_size=4))
    return "\n".join(lines).encode()


def _check_manifest(tmp_path, name: str, content: bytes) -> None:
    from talkface.batch.manifest import read_manifest

    path = tmp_path / f"{uuid.uuid4().hex}-{name}"
    path.write_bytes(content)
    try:
        jobs = read_manifest(path)
    except TalkfaceError as error:
        assert str(error) and "\n" not in str(error).strip()
        return
    for job in jobs:  # accepted: every job is fully typed, or carries its one-line problem
        if job.problem:
            assert "\n" not in job.problem.strip()
            continue
        assert job.audio and job.out and job.person
        for value in job.options.values():
            assert not (isinstance(value, float) and not math.isfinite(value))


@FUZZ
@given(content=csv_manifests())
def test_fuzzed_csv_manifests_load_or_fail_typed(tmp_path, content):
    _check_manifest(tmp_path, "jobs.csv", content)


@FUZZ
@given(content=jsonl_manifests())
def test_fuzzed_jsonl_manifests_load_or_fail_typed(tmp_path, content):
    _check_manifest(tmp_path, "jobs.jsonl", content)


@FUZZ
@given(content=st.binary(max_size=300))
def test_random_bytes_as_manifest(tmp_path, content):
    _check_manifest(tmp_path, "jobs.csv", content)


# -- motion files -----------------------------------------------------------------------------
def _array(draw, shape_choices, dtype_choices):
    shape = draw(st.sampled_from(shape_choices))
    dtype = draw(st.sampled_from(dtype_choices))
    fill = draw(st.sampled_from([0.0, 1.0, np.nan, np.inf, -1e30, 1e30]))
    array = np.random.default_rng(draw(st.integers(0, 2**16))).normal(size=shape)
    if draw(st.booleans()):
        flat = array.reshape(-1)
        flat[: draw(st.integers(0, max(flat.size, 0)))] = fill
    with np.errstate(invalid="ignore"):  # NaN cast to int: whatever it becomes is fuzz too
        return array.astype(dtype) if dtype != "U3" else array.astype(str).astype("U3")


@st.composite
def motion_files(draw) -> bytes:
    n = draw(st.sampled_from([0, 1, 5]))
    arrays = {}
    shapes = {
        "expression": [(n, 64), (n, 3), (n,), (5, 64), ()],
        "pose": [(n, 6), (n, 5), (n, 6, 1), (3, 6)],
        "landmarks": [(n, 478, 3), (n, 68, 2), (n, 478, 2)],
        "fps": [(), (1,), (2,)],
        "format": [(), (1,)],
    }
    for name, choices in shapes.items():
        if draw(st.integers(0, 9)) > 0:  # usually present
            arrays[name] = _array(draw, choices, ["float32", "float64", "int64", "U3"])
    if "fps" in arrays and draw(st.booleans()):
        arrays["fps"] = np.float32(draw(st.sampled_from([25.0, 0.0, -1.0, np.nan, 1e9, 1e-9])))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@FUZZ
@given(content=motion_files())
def test_fuzzed_motion_files_load_or_fail_typed(tmp_path, content):
    from talkface.motion import load_motion

    path = tmp_path / f"{uuid.uuid4().hex}.npz"
    path.write_bytes(content)
    try:
        motion = load_motion(path)
    except TalkfaceError:
        return
    assert motion.n_frames > 0 and 1 <= motion.fps <= 240
    assert np.isfinite(motion.pose[np.isfinite(motion.pose).all(axis=1)]).all()


# -- profiles ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_profile(clip, tmp_path_factory):
    from talkface.config import FinetuneConfig
    from talkface.finetune import finetune

    return finetune(clip, tmp_path_factory.mktemp("fuzz-profile"), FinetuneConfig(min_seconds=2.0, refiner=False)).folder


@st.composite
def profile_damage(draw):
    kind = draw(st.sampled_from(["json-value", "json-field", "bytes", "truncate"]))
    name = draw(st.sampled_from(["profile.json", "motion.npz", "fit.npz", "model.npz", "model.json", "reference.png", "frames.npz"]))
    if kind == "json-value":
        return "profile.json", ("json", draw(JSON_VALUES))
    if kind == "json-field":
        field = draw(st.sampled_from(["format", "source", "features", "validation", "generic", "refiner", "name"]))
        return "profile.json", ("field", field, draw(JSON_VALUES))
    if kind == "bytes":
        return name, ("bytes", draw(st.binary(max_size=64)))
    return name, ("truncate", draw(st.floats(0, 0.99)))


@FUZZ
@given(damage=profile_damage())
@example(damage=("model.json", ("bytes", b"0")))  # valid JSON, not an object: found by this test once
@example(damage=("model.json", ("bytes", b"[]")))
def test_fuzzed_profiles_load_or_fail_typed(fuzz_profile, tmp_path, damage):
    from talkface.profile import load_profile

    folder = tmp_path / uuid.uuid4().hex
    shutil.copytree(fuzz_profile, folder)
    name, (kind, *args) = damage
    path = folder / name
    if kind == "json":
        path.write_text(json.dumps(args[0]))
    elif kind == "field":
        info = json.loads(path.read_text())
        info[args[0]] = args[1]
        path.write_text(json.dumps(info))
    elif kind == "bytes":
        path.write_bytes(args[0])
    else:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * args[0])])
    try:
        profile = load_profile(folder)
        profile.fps, profile.size, profile.feature_set, profile.has_refiner  # noqa: B018 - the typed accessors must hold
    except TalkfaceError as error:
        assert str(folder) in str(error) or name in str(error)
    finally:
        shutil.rmtree(folder)
