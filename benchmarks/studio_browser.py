"""Drive `talkface studio` in a real headless Chromium: upload a photo, make its profile, speak
an uploaded line, download the video; a bad upload's message; a reload that keeps the jobs.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright through its executable
path (Playwright's own browser download is not needed). Every request the page makes is recorded:
the run fails if one leaves this machine. Screenshots of each step go to
benchmarks/results/studio/, and a table of the steps (with their times) to studio.md.

    python benchmarks/studio_browser.py [--chromium /usr/bin/chromium] [--photo PHOTO] [--audio AUDIO]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHOTS = RESULTS / "studio"
PHOTO = ROOT / "tests" / "data" / "biden_portrait_320.jpg"
CLIP = ROOT / "tests" / "data" / "obama_3s.mp4"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def start_server(home: Path, work: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "talkface", "studio", "--port", str(port), "--work", str(work)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TALKFACE_HOME": str(home)},
    )
    line = process.stdout.readline()
    if "talkface studio on" not in line:
        raise SystemExit(f"the studio did not start: {line}{process.stderr.read()}")
    return process, f"http://127.0.0.1:{port}/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--audio", type=Path, default=None, help="speech to upload (default: 3 s of the tests' clip, as wav)")
    parser.add_argument("--clip", type=Path, default=None, help="also make a profile from this clip (draft preset; minutes), shown while its refiner trains, and speak with it")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    from talkface.media import load_audio, probe, write_audio

    SHOTS.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="studio-browser-"))
    audio = args.audio or write_audio(scratch / "line.wav", load_audio(CLIP))
    bad = scratch / "holiday.mp4"
    bad.write_text("not a video, only a text file with the wrong name\n" * 10)
    server, url = start_server(scratch / "home", scratch / "work")
    steps: list[tuple[str, float, str]] = []
    outside: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.on("request", lambda request: outside.append(request.url) if urlparse(request.url).hostname not in LOCAL_HOSTS and not request.url.startswith(("data:", "blob:")) else None)

            def step(name: str, shot: str, action) -> None:
                started = time.perf_counter()
                try:
                    detail = action() or ""
                except Exception:
                    page.screenshot(path=str(scratch.parent / "studio-browser-failed.png"), full_page=True)
                    raise
                seconds = time.perf_counter() - started
                page.screenshot(path=str(SHOTS / shot), full_page=True)
                steps.append((name, seconds, detail))
                print(f"{name}: {seconds:.1f} s {detail}", flush=True)

            def open_page():
                page.goto(url)
                expect(page.get_by_role("tab", name="Profile")).to_be_visible(timeout=60_000)

            def make_profile():
                page.locator("#profile-source input[type=file]").set_input_files(str(args.photo))
                page.locator("#profile-go").click()
                expect(page.locator("#profile-state")).to_contain_text("done", timeout=300_000)
                return page.locator("#profile-state").inner_text().splitlines()[0]

            def bad_upload():
                page.locator("#profile-source button[aria-label='Clear']").first.click() if page.locator("#profile-source button[aria-label='Clear']").count() else None
                page.locator("#profile-source input[type=file]").set_input_files(str(bad))
                page.locator("#profile-go").click()
                message = page.get_by_text("is not a readable video or audio file").first
                expect(message).to_be_visible(timeout=60_000)
                text = message.inner_text()
                page.wait_for_timeout(1000)  # the message slides in
                page.screenshot(path=str(SHOTS / "3_bad_upload.png"), full_page=True)
                page.get_by_test_id("toast-close").first.click()  # the message stays until closed
                expect(page.get_by_test_id("toast-close")).to_have_count(0, timeout=10_000)
                return text

            def clip_profile():
                page.get_by_role("tab", name="Profile").click()
                page.locator("#profile-source button[aria-label='Clear']").first.click()
                page.locator("#profile-source input[type=file]").set_input_files(str(args.clip))
                page.locator("#profile-go").click()
                expect(page.locator("#profile-state")).to_contain_text("held-out face PSNR", timeout=900_000)
                page.screenshot(path=str(SHOTS / "2b_clip_training.png"), full_page=True)
                training = " ".join(page.locator("#profile-state").inner_text().split())
                expect(page.locator("#profile-state")).to_contain_text("done", timeout=1_800_000)
                return f"while training: {training}; then: {page.locator('#profile-state').inner_text().splitlines()[0]}"

            def preview():
                page.get_by_role("tab", name="Speak").click()
                page.get_by_role("button", name="↻").click()
                dropdown = page.locator("#speak-profile input")
                dropdown.click()
                page.get_by_role("option", name=re.compile(r"clip" if args.clip else r"photo")).first.click()
                page.locator("#speech input[type=file]").set_input_files(str(audio))
                expect(page.locator("#speech audio, #speech .waveform-container, #speech [data-testid='waveform-x']").first).to_be_attached(timeout=60_000)
                page.get_by_role("button", name=re.compile("Quick preview")).click()
                expect(page.locator("#speak-state")).to_contain_text("done", timeout=600_000)
                expect(page.locator("#speak-video video")).to_be_attached(timeout=60_000)
                return page.locator("#speak-state").inner_text().splitlines()[0]

            def speak():
                page.locator("#speak-go").click()
                expect(page.locator("#speak-state")).not_to_contain_text("preview", timeout=60_000)
                expect(page.locator("#speak-state")).to_contain_text("done", timeout=600_000)
                expect(page.locator("#speak-video video")).to_be_attached(timeout=60_000)
                return page.locator("#speak-state").inner_text().splitlines()[0]

            def download():
                with page.expect_download(timeout=60_000) as waiting:
                    page.locator("#speak-file a").first.click()
                saved = scratch / "downloaded.mp4"
                waiting.value.save_as(saved)
                info = probe(saved)
                if not (info.has_video and info.has_audio and info.duration > 1):
                    raise SystemExit(f"the download is not a talking video: {info}")
                return f"{saved.stat().st_size // 1024} KB, {info.width}x{info.height}, {info.duration:.1f} s, sound {info.has_audio}"

            def reload():
                page.reload()
                page.get_by_role("tab", name="Speak").click()
                expect(page.locator("#speak-state")).to_contain_text("done", timeout=60_000)
                return "the last speak job and its video are back after the reload"

            def jobs():
                page.get_by_role("tab", name="Jobs").click()
                page.wait_for_timeout(2500)  # the table refreshes every 2 s
                ids = page.get_by_text(re.compile(r"^\d{8}-\d{6}-\w+-[0-9a-f]{6}$")).filter(visible=True)
                listed = ids.count()
                ids.first.click()  # the newest job: its state and outputs
                expect(page.locator("#picked-files")).to_contain_text(re.compile(r"speak\s*\.mp4"), timeout=30_000)
                return f"{listed} jobs listed; the newest one's output offered"

            step("open the page", "1_page.png", open_page)
            step("make a profile from a photo", "2_profile.png", make_profile)
            step("a text file named .mp4", "3_bad_upload_closed.png", bad_upload)
            if args.clip:
                step(f"make a profile from the clip {args.clip.name} (draft)", "2c_clip_profile.png", clip_profile)
            step("quick preview of an uploaded line", "4_preview.png", preview)
            step("speak it (refined when the profile has a refiner)", "5_speak.png", speak)
            step("download the video", "6_download.png", download)
            step("reload the page", "7_reload.png", reload)
            step("the jobs tab", "8_jobs.png", jobs)
            version = browser.version
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    if outside:
        raise SystemExit(f"the page reached outside this machine: {outside[:5]}")
    lines = [
        "# talkface studio in a real browser (benchmarks/studio_browser.py)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')} · Chromium {version} (Debian package, headless, driven by Playwright) · "
        f"{platform.node()} · requests outside this machine: none",
        "",
        "| step | seconds | what the page showed | screenshot |",
        "|---|---|---|---|",
    ]
    shots = ["1_page.png", "2_profile.png", "3_bad_upload.png", "4_preview.png", "5_speak.png", "6_download.png", "7_reload.png", "8_jobs.png"]
    if args.clip:
        shots.insert(3, "2c_clip_profile.png (2b_clip_training.png)")
    for (name, seconds, detail), shot in zip(steps, shots):
        link = " ".join(f"[{name}](studio/{name})" for name in shot.replace("(", "").replace(")", "").split())
        lines.append(f"| {name} | {seconds:.1f} | {detail.replace('|', '/').replace(chr(10), ' ')} | {link} |")
    (RESULTS / "studio.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
