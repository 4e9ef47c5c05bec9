"""Fixtures of the render tests: the shipped clip's face model and fit."""

from __future__ import annotations

import pytest

from talkface.face.fit import build_model
from talkface.face.model import place_vertices
from talkface.face.tracker import track_video


@pytest.fixture(scope="session")
def clip_face(clip):
    """(model, fit) of the shipped clip."""
    return build_model(track_video(clip))


def landmarks_at(model, fit, index):
    """The fitted face's 478 landmarks in frame `index`, in image pixels."""
    return place_vertices(model, fit.expression[index], fit.pose[index])[model.landmark_index]
