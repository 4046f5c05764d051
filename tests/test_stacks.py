"""Supported stacks (issue 18): one file records them, and it agrees with what is installed and declared.

Decision tested here: the Colab setup cell does not pin Keras; cnnbook declares the range it supports, whose lower
bound is Colab's Keras, and `make compat STACK=colab` (compat workflow) runs the course on exactly that bound.
"""

import re
import tomllib

from coursetools import compat


def test_pinned_stack_is_requirements_txt(repo):
    pins = dict(re.findall(r"^(tensorflow|keras)==(\S+)", (repo / "requirements.txt").read_text(), re.M))
    assert compat.stacks(repo)["pinned"] == pins


def test_cnnbook_supports_colabs_keras_as_its_lower_bound_and_does_not_pin_it(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    [keras] = [d for d in project["dependencies"] if d.startswith("keras")]
    assert keras == f"keras>={compat.stacks(repo)['colab']['keras']}"
    assert "tensorflow" not in " ".join(project["dependencies"])  # Colab's own TensorFlow stays


def test_every_stack_names_tensorflow_and_keras(repo):
    for name, stack in compat.stacks(repo).items():
        assert set(stack) == {"tensorflow", "keras"}, name
        assert re.fullmatch(r"\d+\.\d+\.\d+", stack["keras"]), name
        assert re.fullmatch(r"\d+\.\d+\.\d+|none", stack["tensorflow"]), name


def test_the_jax_stack_has_no_tensorflow_and_the_same_keras_as_the_pinned_one(repo):
    known = compat.stacks(repo)
    assert known["jax"] == {"tensorflow": "none", "keras": known["pinned"]["keras"]}
