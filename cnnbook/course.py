"""Where the course lives: one place for the repository address, branch and the Colab pin."""

#: GitHub repository of the course (also ``repository.url`` in ``_config.yml``; a test keeps them equal).
REPOSITORY_URL = "https://github.com/deep-cv-keras/course"
#: Branch the book's launch buttons point at (``repository.branch`` in ``_config.yml``).
BRANCH = "main"
#: Git ref that the Colab setup cell installs ``cnnbook`` from: a release tag, never a moving branch.
COLAB_REF = "v0.1.0"
#: The two profiles every notebook understands (see :mod:`cnnbook.profiles`).
PROFILES = ("sample", "full")
