"""Progress events for other programs (TALKFACE_PROGRESS_FILE): what `talkface studio` shows."""

from __future__ import annotations

import json

from talkface import progress


def test_bars_and_status_lines_go_to_the_progress_file_as_json_lines(tmp_path, monkeypatch):
    target = tmp_path / "progress.jsonl"
    monkeypatch.setenv("TALKFACE_PROGRESS_FILE", str(target))
    with progress.bar("training the refiner", 1000) as advance:
        for step in range(1000):
            advance(1, f"held-out {30 + step / 1000:.2f} dB")
    progress.log("[5/5] done")
    events = [json.loads(line) for line in target.read_text().splitlines()]
    bars = [event for event in events if event["kind"] == "bar"]
    assert bars[0]["done"] == 0 and bars[0]["total"] == 1000
    assert bars[-1]["done"] == 1000 and bars[-1]["status"] == "held-out 31.00 dB", "the last step is always sent"
    assert len(bars) < 50, "steps are sent a few times a second, not each one"
    assert events[-1] == {**events[-1], "kind": "log", "message": "[5/5] done"}


def test_a_bar_stopped_early_sends_where_it_stopped(tmp_path, monkeypatch):
    target = tmp_path / "progress.jsonl"
    monkeypatch.setenv("TALKFACE_PROGRESS_FILE", str(target))
    try:
        with progress.bar("rendering", 100) as advance:
            for _ in range(37):
                advance()
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    last = json.loads(target.read_text().splitlines()[-1])
    assert (last["stage"], last["done"]) == ("rendering", 37)


def test_an_unwritable_progress_file_never_stops_the_work(tmp_path, monkeypatch):
    monkeypatch.setenv("TALKFACE_PROGRESS_FILE", str(tmp_path / "gone" / "progress.jsonl"))
    with progress.bar("rendering", 3) as advance:
        advance(3)
    progress.log("still fine")
    assert not (tmp_path / "gone").exists()
