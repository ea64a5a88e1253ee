"""Exceptions that the interfaces map to exit codes and one-line messages."""

from __future__ import annotations


class TalkingHeadError(Exception):
    """Base class of every error talkinghead raises on purpose."""

    exit_code = 1


class InputError(TalkingHeadError):
    """A user's input is unusable (unreadable file, no face, bad option): exit code 2."""

    exit_code = 2


class NoFaceError(InputError):
    """No face was found where one was required."""
