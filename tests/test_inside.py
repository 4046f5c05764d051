"""Chapter 8's tools (cnnbook.inside) against answers known without them.

Oracles: Grad-CAM on a network that ends in global average pooling and one dense layer is, by its definition, the
ReLU of the maps weighted by the dense layer's column over the number of positions (Zhou et al.'s CAM), computed here
in NumPy; saliency and FGSM of a linear softmax model use its gradient written by hand, ``W (p - onehot)``;
occlusion of a model that sums one quadrant is counted by hand; the Gram matrix is a NumPy loop over positions;
gradient ascent on a linear score with L2 decay must end near the score's own weights (the maximiser of
``w·x - λ|x|²`` is proportional to ``w``); receptive fields are counted by hand for the small Fashion-MNIST CNN; the
cat check measures the real network on the real photo against the box ``CAT_FACE_BOX`` marked by hand.
"""

import keras
import numpy as np
import pytest

from cnnbook import inside

RNG = np.random.default_rng(0)


def _gap_network(weights):
    """Input (4, 4, 2), an identity 1x1 convolution (the feature maps), global average pooling, one dense layer."""
    inputs = keras.Input((4, 4, 2))
    identity = keras.layers.Conv2D(2, 1, use_bias=False, name="features")     # a real layer that copies its input
    pooled = keras.layers.GlobalAveragePooling2D()(identity(inputs))
    dense = keras.layers.Dense(weights.shape[1], name="logits")
    model = keras.Model(inputs, dense(pooled))
    identity.set_weights([np.eye(2, dtype="float32")[None, None]])
    dense.set_weights([weights, np.zeros(weights.shape[1], "float32")])
    return model


def _linear_softmax(shape, classes, seed=1, scale=1.0):
    """Flatten, then Dense(classes): logits = x.ravel() @ W + b, with random W (times scale) and b."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(shape)
    dense = keras.layers.Dense(classes)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    w = (scale * rng.normal(size=(int(np.prod(shape)), classes))).astype("float32")
    b = rng.normal(size=classes).astype("float32")
    dense.set_weights([w, b])
    return model, w, b


def test_grad_cam_is_the_class_activation_map_on_a_gap_network():
    weights = np.array([[1.0, -2.0], [-0.5, 1.5]], "float32")      # channel k -> class c
    model = _gap_network(weights)
    maps = RNG.normal(size=(3, 4, 4, 2)).astype("float32")
    classes = np.array([0, 1, 0])
    got = inside.grad_cam(model, maps, "features", classes)
    expected = np.stack([np.maximum((maps[i] * weights[:, c] / 16).sum(-1), 0) for i, c in enumerate(classes)])
    assert got.shape == (3, 4, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert (got == 0).any() and (got > 0).any()                     # the ReLU mattered on these maps


def test_grad_cam_with_the_loss_gradient_instead_of_the_score_gives_another_map():
    # The plausible wrong answer: weighting by the gradient of the loss flips the sign of every weight.
    weights = np.array([[1.0, -2.0], [-0.5, 1.5]], "float32")
    maps = RNG.normal(size=(1, 4, 4, 2)).astype("float32")
    right = inside.grad_cam(_gap_network(weights), maps, "features", np.array([0]))
    wrong = np.maximum((maps[0] * -weights[:, 0] / 16).sum(-1), 0)[None]
    assert not np.allclose(right, wrong)


def test_saliency_of_a_linear_model_is_its_weights():
    model, w, _ = _linear_softmax((3, 3, 2), 4)
    images = RNG.normal(size=(2, 3, 3, 2)).astype("float32")
    classes = np.array([1, 3])
    got = inside.saliency(model, images, classes)
    expected = np.stack([np.abs(w[:, c].reshape(3, 3, 2)).max(-1) for c in classes])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def _top_left_sum():
    """A model that looks only at the top-left 4x4 quadrant of an 8x8 image: score = sum of those 16 pixels."""
    inputs = keras.Input((8, 8, 1))
    quadrant = keras.layers.Cropping2D(((0, 4), (0, 4)))(inputs)
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(quadrant)))
    dense.set_weights([np.ones((16, 1), "float32")])
    return model


def test_occlusion_sees_only_the_region_the_model_looks_at():
    image = np.ones((8, 8, 1), "float32")
    got = inside.occlusion(_top_left_sum(), image, 0, patch=2, stride=2, fill=0.0, softmax=False)
    expected = np.zeros((4, 4))
    expected[:2, :2] = 4.0                                          # a 2x2 patch hides 4 pixels of the quadrant
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_occlusion_counts_partial_overlap():
    image = np.ones((8, 8, 1), "float32")
    got = inside.occlusion(_top_left_sum(), image, 0, patch=3, stride=1, fill=0.0, softmax=False)
    # the patch at (i, j) hides the cells of rows i..i+2 and columns j..j+2 that fall inside rows/cols 0..3
    overlap = lambda start: max(0, min(start + 3, 4) - start)
    expected = np.array([[overlap(i) * overlap(j) for j in range(6)] for i in range(6)], "float64")
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_fgsm_moves_every_pixel_by_epsilon_up_the_hand_written_gradient():
    model, w, b = _linear_softmax((4, 4, 1), 3, seed=2)
    images = RNG.uniform(50, 200, size=(5, 4, 4, 1)).astype("float32") / 255
    labels = np.array([0, 1, 2, 0, 1])
    eps = 0.01
    adv = inside.fgsm(model, images, labels, eps, low=0.0, high=1.0)
    flat = images.reshape(5, -1)
    logits = flat @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = (p - np.eye(3)[labels]) @ w.T                            # d cross-entropy / d x
    np.testing.assert_allclose(adv.reshape(5, -1) - flat, eps * np.sign(grad), atol=1e-6)
    loss = lambda x: -np.log(np.take_along_axis(keras.ops.convert_to_numpy(
        keras.ops.softmax(model.predict(x, verbose=0))), labels[:, None], 1))
    assert (loss(adv) > loss(images)).all()


def test_fgsm_stays_in_the_valid_range_and_within_epsilon():
    model, _, _ = _linear_softmax((6, 6, 1), 3, seed=3, scale=1e-3)   # small logits: the softmax does not saturate
    images = RNG.choice([0.0, 255.0, 128.0], size=(4, 6, 6, 1)).astype("float32")
    adv = inside.fgsm(model, images, np.array([0, 1, 2, 0]), 8.0)
    assert adv.min() >= 0 and adv.max() <= 255
    assert np.abs(adv - images).max() <= 8.0 + 1e-4
    middle = images == 128.0
    np.testing.assert_allclose(np.abs(adv - images)[middle], 8.0)    # away from the bounds every pixel moves by eps


def test_gram_matrix_against_a_numpy_loop():
    features = RNG.normal(size=(2, 5, 6, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(inside.gram_matrix(features))
    expected = np.zeros((2, 3, 3))
    for n in range(2):
        for i in range(5):
            for j in range(6):
                expected[n] += np.outer(features[n, i, j], features[n, i, j])
    np.testing.assert_allclose(got, expected / 30, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, np.transpose(got, (0, 2, 1)), atol=1e-6)


def test_mass_inside_counts_by_hand():
    heat = np.zeros((10, 10))
    heat[2:5, 3:7] = 1.0                                            # 12 cells of mass 1
    heat[8, 8] = 4.0
    assert inside.mass_inside(heat, (0.2, 0.3, 0.5, 0.7)) == pytest.approx(12 / 16)
    assert inside.mass_inside(heat, (0.0, 0.0, 1.0, 1.0)) == pytest.approx(1.0)


def test_gradient_ascent_on_a_linear_score_finds_its_weights():
    w = RNG.normal(size=(1, 16, 16, 3)).astype("float32")
    image = inside.visualise(lambda x: keras.ops.sum(x * w), (1, 16, 16, 3), steps=40, jitter=0, blur=0,
                             decay=0.05, step_size=0.05)
    assert np.abs(image).max() <= 1.0
    assert np.corrcoef(image.ravel(), w.ravel())[0, 1] > 0.95


def test_receptive_field_of_the_fashion_cnn_counted_by_hand():
    model = inside.fashion_cnn()
    assert inside.receptive_field(model, "conv1") == (5, 1)
    assert inside.receptive_field(model, "pool1") == (6, 2)          # 5 + (2 - 1) * 1
    assert inside.receptive_field(model, "conv2") == (10, 2)         # 6 + (3 - 1) * 2
    assert inside.receptive_field(model, "pool2") == (12, 4)         # 10 + (2 - 1) * 2
    with pytest.raises(ValueError):
        inside.receptive_field(model, "no_such_layer")


def test_stylise_lowers_the_style_loss_and_keeps_the_content_without_style():
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b")(a)
    keras.utils.set_random_seed(0)
    extractor = keras.Model(inputs, [a, b])
    content = RNG.uniform(-1, 1, (1, 8, 8, 3)).astype("float32")
    style = RNG.uniform(-1, 1, (1, 8, 8, 3)).astype("float32")
    _, losses = inside.stylise(extractor, content, style, steps=60, weights=(1.0, 0.0, 0.0), rate=0.05)
    assert losses[-1, 0] < 0.2 * losses[0, 0]
    kept, losses = inside.stylise(extractor, content, style, steps=10, weights=(0.0, 1.0, 0.0))
    np.testing.assert_allclose(kept, content, atol=1e-6)           # the content term is 0 with zero gradient
    assert np.all(losses[:, 1] == 0)


def test_fashion_cnn_outputs_logits_for_ten_classes():
    model = inside.fashion_cnn()
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation is keras.activations.linear
    assert model.get_layer("conv1").kernel_size == (5, 5)


def test_upsample_keeps_constant_maps_and_the_size():
    maps = np.full((2, 7, 7), 3.0)
    up = inside.upsample(maps, 28)
    assert up.shape == (2, 28, 28)
    np.testing.assert_allclose(up, 3.0, atol=1e-5)


@pytest.fixture(scope="module")
def lite0():
    from cnnbook import pretrained

    try:
        pretrained.weights_path()
    except pretrained.WeightsPackageMissing as exc:
        pytest.skip(str(exc))
    return pretrained.efficientnet_lite0((None, None, 3))


def test_photos_are_the_six_real_photos():
    photos, names = inside.photos(64)
    assert photos.shape == (6, 64, 64, 3) and photos.dtype == np.uint8
    assert names == list(inside.PHOTO_NAMES)
    assert len({int(p.astype("int64").sum()) for p in photos}) == 6


def test_most_of_the_cats_grad_cam_falls_in_the_box_marked_by_hand(lite0):
    from cnnbook import pretrained

    photos, _ = inside.photos()
    x = pretrained.preprocess_input(photos[:1])
    top = lite0.predict(x, verbose=0).argmax(1)
    heat = inside.upsample(inside.grad_cam(lite0, x, "head_relu6", top), 224)[0]
    top_, left, bottom, right = inside.CAT_FACE_BOX
    share = inside.mass_inside(heat, inside.CAT_FACE_BOX)
    assert share > 0.5, f"only {share:.0%} of the cat's Grad-CAM mass falls in the face box"
    assert share > (bottom - top_) * (right - left), "no more mass in the box than an even spread would put there"
