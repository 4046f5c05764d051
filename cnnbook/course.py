"""What every notebook of the course shares (the repository's address lives in ``_config.yml``: coursetools.course)."""

#: The two profiles every notebook understands (see :mod:`cnnbook.profiles`).
PROFILES = ("sample", "full")
