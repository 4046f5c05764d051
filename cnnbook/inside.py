"""Seeing inside a CNN (chapter 8): saliency, occlusion, Grad-CAM, FGSM, feature visualisation, Gram matrices.

Every function here is written on the page of chapter 8 (``# @save cnnbook.inside.<name>``; tests/test_saved_blocks.py
checks that page and package agree). What needs the gradient of a model with respect to its input or an inner layer
(:func:`saliency`, :func:`grad_cam`, :func:`fgsm`, :func:`visualise`, :func:`stylise`) uses TensorFlow's
``tf.GradientTape``: Keras 3 has no backend-neutral gradient call. :func:`occlusion`, :func:`gram_matrix`,
:func:`mass_inside` and :func:`photos` need only forward passes and NumPy, and run on any backend.
"""

from __future__ import annotations

import keras
import numpy as np

#: The six photos of chapter 8, in order: scikit-image's cat (``chelsea``), coffee, astronaut and rocket, and
#: scikit-learn's two sample photos.
PHOTO_NAMES = ("cat", "coffee", "astronaut", "rocket", "china", "flower")
#: A box around the cat's face (eyes, nose and mouth) in the centre-cropped cat photo, marked by hand by looking at
#: the photo (not computed): (top, left, bottom, right) as fractions of the side, so it holds at any size.
CAT_FACE_BOX = (0.25, 0.18, 0.98, 0.92)


def photos(size: int = 224) -> tuple[np.ndarray, list[str]]:
    """The six photos of :data:`PHOTO_NAMES`, centre-cropped to squares and resized: uint8 (6, size, size, 3) (ch. 8)."""
    from PIL import Image
    from skimage import data as skdata
    from sklearn.datasets import load_sample_image

    found = [skdata.chelsea(), skdata.coffee(), skdata.astronaut(), skdata.rocket(),
             load_sample_image("china.jpg"), load_sample_image("flower.jpg")]
    out = []
    for image in found:
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crop = Image.fromarray(image[top:top + side, left:left + side])
        out.append(np.asarray(crop.resize((size, size), Image.BICUBIC)))
    return np.stack(out).astype("uint8"), list(PHOTO_NAMES)


def fashion_cnn(num_classes=10):
    """Chapter 8's small Fashion-MNIST CNN: 5x5 first-layer filters, big enough to look at; it outputs logits."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(16, 5, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(x), name="fashion_cnn")


def receptive_field(model, layer_name):
    """Side in pixels of the input square one position of ``layer_name`` sees, and its stride, along the model's
    chain of convolutions (a residual add changes neither) (chapter 8)."""
    size, jump = 1, 1
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.MaxPooling2D)):
            kernel = layer.pool_size if isinstance(layer, keras.layers.MaxPooling2D) else layer.kernel_size
            size, jump = size + (kernel[0] - 1) * jump, jump * layer.strides[0]
        if layer.name == layer_name:
            return size, jump
    raise ValueError(f"{model.name} has no layer {layer_name!r}")


def saliency(model, images, classes):
    """Simonyan et al.'s saliency: |d class score / d pixel|, largest over colour channels; needs TensorFlow (ch. 8)."""
    import tensorflow as tf
    x = tf.convert_to_tensor(images, dtype="float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = tf.gather(model(x, training=False), classes, batch_dims=1)
    return tf.reduce_max(tf.abs(tape.gradient(scores, x)), axis=-1).numpy()


def occlusion(model, image, class_index, patch=56, stride=28, fill=0.0, softmax=True):
    """Zeiler & Fergus: how much the class probability drops when a square of ``fill`` hides each place (ch. 8)."""
    h, w = image.shape[:2]
    rows, cols = range(0, h - patch + 1, stride), range(0, w - patch + 1, stride)
    hidden = np.repeat(np.asarray(image, "float32")[None], len(rows) * len(cols) + 1, axis=0)
    for k, (i, j) in enumerate((i, j) for i in rows for j in cols):
        hidden[k + 1, i:i + patch, j:j + patch] = fill        # hidden[0] stays the whole image
    scores = model.predict(hidden, verbose=0, batch_size=64)
    if softmax:
        scores = keras.ops.convert_to_numpy(keras.ops.softmax(scores))
    return (scores[0, class_index] - scores[1:, class_index]).reshape(len(rows), len(cols))


def grad_cam(model, images, layer_name, classes):
    """Grad-CAM (Selvaraju et al.): a layer's channels weighted by the mean gradient of the class score, then ReLU.

    The score is the model's output before any softmax (pass a model that ends in logits). Needs TensorFlow (ch. 8).
    """
    import tensorflow as tf
    probe = keras.Model(model.input, [model.get_layer(layer_name).output, model.output])
    with tf.GradientTape() as tape:
        maps, scores = probe(tf.convert_to_tensor(images, dtype="float32"), training=False)
        scores = tf.gather(scores, classes, batch_dims=1)
    weights = tf.reduce_mean(tape.gradient(scores, maps), axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()


def upsample(maps, size):
    """Maps (N, h, w) resized bilinearly to (N, size, size), to lay over the photos (any backend) (chapter 8)."""
    resized = keras.ops.image.resize(np.asarray(maps, "float32")[..., None], (size, size), interpolation="bilinear")
    return keras.ops.convert_to_numpy(resized)[..., 0]


def mass_inside(heatmap, box):
    """Share of a non-negative map's sum inside ``box`` = (top, left, bottom, right), fractions of the side (ch. 8)."""
    heatmap = np.asarray(heatmap, "float64")
    h, w = heatmap.shape
    top, left, bottom, right = box
    inside = heatmap[round(top * h):round(bottom * h), round(left * w):round(right * w)]
    return float(inside.sum() / heatmap.sum())


def fgsm(model, images, labels, epsilon, low=0.0, high=255.0, from_logits=True):
    """Goodfellow et al.'s fast gradient sign method: one step of size epsilon up the sign of the loss's gradient.

    The result is clipped to [low, high], the valid pixel range of the model's input. Needs TensorFlow (ch. 8).
    """
    import tensorflow as tf
    x = tf.convert_to_tensor(images, dtype="float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.losses.sparse_categorical_crossentropy(labels, model(x, training=False), from_logits=from_logits)
    return tf.clip_by_value(x + epsilon * tf.sign(tape.gradient(loss, x)), low, high).numpy()


def visualise(score, shape, steps=60, step_size=0.05, jitter=8, blur=0.5, decay=0.005, seed=0):
    """Gradient ascent on the input: images that make ``score(images)`` large, kept natural by jitter, blur and
    L2 decay of the pixels (Yosinski et al.); pixels stay in [-1, 1]. Needs TensorFlow (chapter 8)."""
    import tensorflow as tf
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    image = tf.Variable(rng.normal(0.0, 0.1, shape).astype("float32"))
    for step in range(steps):
        dy, dx = rng.integers(-jitter, jitter + 1, 2)
        with tf.GradientTape() as tape:
            objective = score(tf.roll(image, (int(dy), int(dx)), (1, 2)))
        grad = tape.gradient(objective, image)
        image.assign((image + step_size * grad / (tf.math.reduce_std(grad) + 1e-8)) * (1 - decay))
        if blur and step % 4 == 0:
            image.assign(gaussian_filter(image.numpy(), (0, blur, blur, 0)))
        image.assign(tf.clip_by_value(image, -1.0, 1.0))
    return image.numpy()


def gram_matrix(features):
    """Gatys et al.'s style: inner products of each pair of channels of (N, H, W, C), averaged over positions (ch. 8)."""
    features = keras.ops.convert_to_tensor(features, dtype="float32")
    positions = keras.ops.cast(keras.ops.shape(features)[1] * keras.ops.shape(features)[2], "float32")
    return keras.ops.einsum("bijc,bijd->bcd", features, features) / positions


def stylise(extractor, content, style, steps=200, weights=(1.0, 1.0, 1.0), rate=0.02):
    """Gatys et al.: change the pixels of ``content`` so that the extractor's last map stays the content's and the
    Gram matrices of its other maps approach the style's; weights: style, content, smoothness. Needs TensorFlow."""
    import tensorflow as tf
    targets, content_target = [gram_matrix(f) for f in extractor(style)[:-1]], extractor(content)[-1]
    image, optimizer, losses = tf.Variable(content), keras.optimizers.Adam(rate), []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            *maps, content_map = extractor(image)
            style_loss = tf.reduce_mean([tf.reduce_mean((gram_matrix(f) - g) ** 2) for f, g in zip(maps, targets)])
            content_loss = tf.reduce_mean((content_map - content_target) ** 2)
            smooth = tf.reduce_mean(tf.image.total_variation(image)) / np.prod(content.shape[1:3])
            loss = weights[0] * style_loss + weights[1] * content_loss + weights[2] * smooth
        optimizer.apply_gradients([(tape.gradient(loss, image), image)])
        image.assign(tf.clip_by_value(image, -1.0, 1.0))
        losses.append((float(style_loss), float(content_loss)))
    return image.numpy(), np.array(losses)
