"""Layers that exist only in a graph converted to LiteRT (`export.resizable`), made
with TensorFlow, the converter's own backend: they are never saved in a .keras file."""

import keras
import tensorflow as tf


class SubPixelConvolution(keras.layers.Layer):
    """A 1x1 convolution to 4 * `filters` and a depth-to-space by 2: a 2x2 transposed
    convolution of stride 2 (Shi et al., "Real-Time Single Image and Video
    Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network", CVPR
    2016), in a form whose converted graph holds no shape."""

    def __init__(self, filters, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        # After the depth-to-space, as after the transposed convolution; both act per pixel.
        self.convolution = keras.layers.Conv2D(4 * filters, 1, activation=activation)

    def build(self, input_shape):
        self.convolution.build(input_shape)

    def call(self, x):
        return tf.nn.depth_to_space(self.convolution(x), 2)


class FirstInput(keras.layers.Layer):
    """The first of its inputs, unchanged: where a crop to the second input stood."""

    def call(self, inputs):
        return inputs[0]
