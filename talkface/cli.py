"""The `talkface` command: options -> config -> library call; TalkfaceError -> one line + exit code."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from talkface.config import ReconstructConfig, TrackConfig
from talkface.errors import TalkfaceError

app = typer.Typer(
    help="Talking-face video from a short clip of a person and any speech. Offline, CPU or GPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stdout = Console()
stderr = Console(stderr=True)

_TRACK = TrackConfig()
_RECONSTRUCT = ReconstructConfig()


def reports_errors(command):
    """Turn a TalkfaceError into `error: ...` on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TalkfaceError as exc:
            stderr.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            stderr.print("interrupted; finished stages are cached and a rerun resumes from them")
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@reports_errors
def track(
    video: Path = typer.Option(..., "--video", "-v", help="Clip of one person talking (mp4, mov, mkv, webm)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Work folder for results and cache (default: ./VIDEO-NAME-track)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on stdout."),
    save_motion: Optional[Path] = typer.Option(None, "--save-motion", help="Also write the clip's motion file (.npz)."),
    overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Write overlay.mp4 with the fitted mesh drawn."),
    force: bool = typer.Option(False, "--force", help="Ignore cached results and redo every stage."),
    smoothing_window: int = typer.Option(_TRACK.smoothing_window, help="Frames in the zero-lag landmark smoother (1 = off)."),
    max_gap: int = typer.Option(_TRACK.max_interpolated_gap, help="Longest face-less run (frames) filled by interpolation."),
    n_expression: int = typer.Option(_RECONSTRUCT.n_expression, help="Expression basis size."),
) -> None:
    """Track the face in a clip and reconstruct it in 3D (identity, head pose, expression, texture)."""
    from talkface.motion import save_motion as write_motion
    from talkface.track import track as run_track

    out = out or Path(f"{video.stem}-track")
    result = run_track(
        video,
        out,
        TrackConfig(smoothing_window=smoothing_window, max_interpolated_gap=max_gap),
        ReconstructConfig(n_expression=n_expression),
        overlay=overlay,
        force=force,
    )
    if save_motion:
        write_motion(save_motion, result.motion())
    summary = result.summary
    if as_json:
        print(json.dumps(summary.to_json()))
        return
    table = Table(title=f"talkface track: {video.name}", show_header=False)
    table.add_row("frames tracked", f"{summary.n_tracked} / {summary.n_frames} at {summary.fps:g} fps ({summary.width}x{summary.height})")
    table.add_row("gaps (no face)", _ranges(summary.gaps) or "none")
    table.add_row("reprojection", f"{summary.mean_reprojection_px:.2f} px (raw detections {summary.mean_reprojection_raw_px:.2f} px)")
    table.add_row("head pose std", ", ".join(f"{k} {v:.1f}°" for k, v in summary.pose_std_deg.items()))
    table.add_row("speed", "cached" if summary.cached else f"{summary.frames_per_second:.0f} frames/s")
    table.add_row("finetune", "ready" if summary.finetune_ready else summary.finetune_problem)
    table.add_row("results", str(out) + (f"  (overlay: {summary.overlay})" if summary.overlay else ""))
    stdout.print(table)


def _ranges(ranges) -> str:
    return ", ".join(f"{a}-{b}" for a, b in ranges)


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Report versions, ffmpeg, the face tracker model, the compute device and what is missing."""
    from talkface.doctor import as_json as report_json
    from talkface.doctor import run_checks

    checks = run_checks()
    report = report_json(checks)
    if as_json:
        print(json.dumps(report))
    else:
        table = Table(title="talkface doctor")
        for column in ("check", "status", "detail"):
            table.add_column(column)
        for check in checks:
            status = "[green]ok[/]" if check.ok else ("[red]MISSING[/]" if check.required else "[yellow]optional[/]")
            table.add_row(check.name, status, check.detail)
        stdout.print(table)
    if not report["ok"]:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
