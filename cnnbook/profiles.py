"""The ``sample``/``full`` profiles of every notebook (see the course README, "Profiles")."""

from cnnbook.course import PROFILES


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is a known profile, else raise ``ValueError`` naming the valid ones."""
    if profile not in PROFILES:
        raise ValueError(
            f"unknown profile {profile!r}: use one of {', '.join(map(repr, PROFILES))} "
            "(for example PROFILE = \"sample\" in the notebook's parameters cell, "
            "or --profile sample on the runner)"
        )
    return profile


def pick(profile: str, *, sample, full):
    """Return the ``sample`` or the ``full`` value for ``profile`` (e.g. thresholds, epochs)."""
    return {"sample": sample, "full": full}[check_profile(profile)]
