"""The course's build tooling (runner, release, site, setup cells, regression helpers, stacks): not for students.

Installed by ``make setup`` into the course's ``.venv`` (a path file pointing at the checkout), never by
``pip install cnnbook``, which is what the Colab setup cell runs. Lessons and exercises import only ``cnnbook``.
"""
