"""Typed errors. Each names the problem and what to do about it.

The CLI turns any :class:`TalkfaceError` into one line on stderr and the
subclass's ``exit_code``: 2 for every problem with the input or the request (a file, an
option, a profile, a missing package or device), as for a usage error; 1 for a failure
that is not the input's fault. Library callers catch the type they care about.
"""

from __future__ import annotations


class TalkfaceError(Exception):
    """Base class of every error talkface raises on purpose."""

    exit_code = 1


class InputError(TalkfaceError):
    """A file given by the user is missing, unreadable or of the wrong kind."""

    exit_code = 2


class NoVideoStreamError(InputError):
    """The file decodes but holds no video stream."""


class NoAudioStreamError(InputError):
    """The file decodes but holds no audio stream where audio is needed."""


class ClipTooShortError(InputError):
    """The clip is too short for the requested work."""


class FaceError(TalkfaceError):
    """The face tracker could not find exactly one usable face."""

    exit_code = 2


class NoFaceError(FaceError):
    """No face was found in the whole clip (or in too much of it)."""


class MultipleFacesError(FaceError):
    """Two or more faces of similar size appear, so the speaker is ambiguous."""


class CacheError(TalkfaceError):
    """A cached result or saved model is corrupt or from an incompatible version."""

    exit_code = 2


class ProfileError(CacheError):
    """A person profile is damaged or incomplete; the message names the file and the command that rebuilds it."""


class DependencyError(TalkfaceError):
    """An optional package or device needed for the request is not available."""

    exit_code = 2
