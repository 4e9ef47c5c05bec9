"""`talkface studio`'s checks before it serves: the extra installed, the address private or guarded."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from talkface.errors import InputError
from talkface.profile import talkface_home

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    if auth is None:
        return None
    user, colon, password = auth.partition(":")
    if not colon or not user or not password:
        raise InputError("--auth takes USER:PASS, both non-empty (for example --auth ana:a-long-passphrase)")
    return user, password


def check_port(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise InputError(f"--port {port} is not a port: give one from 1 to 65535 (7860 by default)")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): pass another --port, or stop what uses it") from None


def run_studio(port: int, host: str, auth: str | None, work: Path | None, max_upload_mb: int, jobs: int, ready) -> None:
    credentials = parse_auth(auth)
    if not is_loopback(host) and credentials is None:
        raise InputError(f"--host {host} opens the studio to other machines: give --auth USER:PASS too, or leave --host out to keep it to this one")
    if max_upload_mb < 1 or jobs < 1:
        raise InputError("--max-upload and --jobs must be at least 1")
    check_port(host, port)
    from talkface.studio.app import Settings, default_work, private_gradio, serve

    settings = Settings(work=Path(work) if work else default_work(), profiles=talkface_home() / "profiles", max_upload_mb=max_upload_mb, parallel=jobs)
    private_gradio(settings.work)
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InputError("the studio needs its extra: pip install 'talkface[studio]' (or make install)") from None
    serve(settings, host, port, credentials, ready)
