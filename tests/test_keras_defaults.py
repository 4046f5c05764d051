"""Keras defaults that chapter 4's text states, read from the installed Keras (the oracle is Keras itself)."""

import inspect

import keras
import numpy as np


def test_leaky_relu_layer_and_function_have_different_default_slopes():
    # chapter 4: the layer keras.layers.LeakyReLU defaults to negative_slope=0.3, the function
    # keras.activations.leaky_relu to 0.2
    assert inspect.signature(keras.layers.LeakyReLU.__init__).parameters["negative_slope"].default == 0.3
    assert inspect.signature(keras.activations.leaky_relu).parameters["negative_slope"].default == 0.2
    x = np.array([-10.0], "float32")
    assert np.allclose(keras.ops.convert_to_numpy(keras.layers.LeakyReLU()(x)), -3.0)
    assert np.allclose(keras.ops.convert_to_numpy(keras.activations.leaky_relu(x)), -2.0)


def test_prelu_learns_one_slope_per_element_unless_shared_axes_is_set():
    # chapter 4: keras.layers.PReLU() has a slope for every element of its input (height x width x channels);
    # shared_axes=[1, 2] shares it over the positions, one slope per channel
    per_element = keras.layers.PReLU()
    per_element.build((None, 5, 4, 3))
    per_channel = keras.layers.PReLU(shared_axes=[1, 2])
    per_channel.build((None, 5, 4, 3))
    assert per_element.count_params() == 5 * 4 * 3 and per_channel.count_params() == 3
