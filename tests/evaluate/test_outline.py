"""The second-outline (ghost) measure on constructed heads with known answers."""

from __future__ import annotations

import cv2
import numpy as np

from talkface.evaluate.outline import OUTSIDE_BAND, doubled_outline, head_outline

SIZE = 300
ROOM, SKIN = (90, 90, 90), (200, 170, 150)


def head(radius: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """A round head on a plain room, and its matte (a soft edge, as the segmenter's)."""
    image = np.full((SIZE, SIZE, 3), ROOM, np.uint8)
    cv2.circle(image, (150, 150), radius, SKIN, -1)
    matte = np.zeros((SIZE, SIZE), np.float32)
    cv2.circle(matte, (150, 150), radius, 1.0, -1)
    return image, cv2.GaussianBlur(matte, (0, 0), 1.5)


def test_a_clean_head_has_no_second_outline():
    image, matte = head()
    reading = doubled_outline(image, matte, chin_y=260)
    assert len(reading.points) > 150 and reading.share == 0 and reading.longest == 0


def test_a_ghost_ring_beside_the_head_is_found_at_its_distance():
    image, matte = head()
    cv2.circle(image, (150, 150), 90, (150, 135, 125), 2)  # a faint copy of the outline, 9-10 px out
    reading = doubled_outline(image, matte, chin_y=260)
    assert reading.share > 0.9 and reading.longest > 300
    assert 7 <= np.nanmedian(reading.distance) <= 11


def test_a_ring_beyond_the_band_or_below_the_chin_does_not_count():
    image, matte = head()
    cv2.circle(image, (150, 150), 80 + OUTSIDE_BAND[1] + 8, (150, 135, 125), 2)
    assert doubled_outline(image, matte, chin_y=260).share == 0
    image, matte = head()
    cv2.ellipse(image, (150, 150), (90, 90), 0, 20, 160, (150, 135, 125), 2)  # only the lower arc, below the chin
    assert doubled_outline(image, matte, chin_y=150 + 80 * np.sin(np.radians(15))).share == 0


def test_the_rooms_texture_reads_far_less_than_a_ghost():
    """A blotchy room beside the head gives second edges here and there, not along the head."""
    rng = np.random.default_rng(0)
    image, matte = head()
    blotches = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.5)
    image[:] = np.clip(90 + blotches[..., None] * (60 / blotches.std()), 0, 255).astype(np.uint8)
    cv2.circle(image, (150, 150), 80, SKIN, -1)
    assert doubled_outline(image, matte, chin_y=260).share < 0.35  # a ghost reads > 0.9


def test_a_matte_inside_a_soft_edge_reads_one_edge():
    """The segmenter's matte need not sit on the visible edge: with it a few px inside a soft edge,
    the edge itself lies in the band outside, but as the rise from the matte's edge, not a second."""
    for inset in (4, 5):
        image, _ = head()
        _, matte = head(radius=80 - inset)
        assert doubled_outline(cv2.GaussianBlur(image, (0, 0), 2.5), matte, chin_y=260).share == 0


def test_the_ghost_on_the_old_outline_is_told_from_a_line_in_the_room():
    image, matte = head()
    cv2.circle(image, (150, 150), 90, (150, 135, 125), 2)
    old = head_outline(head(radius=90)[1], chin_y=260)[0]  # the head was 10 px wider before it turned
    assert doubled_outline(image, matte, 260, old).ghost_share > 0.9
    elsewhere = head_outline(head(radius=110)[1], chin_y=260)[0]
    assert doubled_outline(image, matte, 260, elsewhere).ghost_share == 0


def test_no_person_reads_nothing():
    image = np.full((SIZE, SIZE, 3), ROOM, np.uint8)
    reading = doubled_outline(image, np.zeros((SIZE, SIZE), np.float32), chin_y=260)
    assert len(reading.points) == 0 and reading.share == 0 and reading.longest == 0 and reading.ghost_share == 0
