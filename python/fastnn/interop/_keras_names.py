"""The name tables shared by the Keras reader and writer."""
from __future__ import annotations

import re

# fastnn initializer names <-> Keras initializer class names
INITIALIZERS = {
    "zeros": "Zeros", "ones": "Ones", "constant": "Constant", "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal", "he_normal": "HeNormal", "he_uniform": "HeUniform",
    "orthogonal": "Orthogonal",
}
KERAS_INITIALIZERS = {v: k for k, v in INITIALIZERS.items()}

# Keras config keys fastnn's constructors do not take, with the values at which dropping
# them leaves the model the same. A key absent from a config is the Keras default.
NEUTRAL = {
    "data_format": ("channels_last", None),
    "dilation_rate": (1, (1,), (1, 1)),
    "groups": (1,),
    "activity_regularizer": (None,),
    "kernel_constraint": (None,), "bias_constraint": (None,), "recurrent_constraint": (None,),
    "depthwise_constraint": (None,), "pointwise_constraint": (None,),
    "gamma_constraint": (None,), "beta_constraint": (None,), "embeddings_constraint": (None,),
    "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": (None,), "lora_enabled": (False,),
    "sparse": (False,), "ragged": (False,), "optional": (False,),
    "synchronized": (False,), "renorm": (False,),
    "unroll": (False, True),            # fastnn's fused loop gives the same numbers either way
    "zero_output_for_mask": (False, True),
    "noise_shape": (None,),
    "interpolation_order": (1,),
    "keepdims": (False,),
}

# Initializer arguments a fastnn layer may lack: weights are read from the file, so
# dropping them does not change the loaded model (only a later re-initialization).
INITIALIZER_KEYS = ("kernel_initializer", "bias_initializer", "recurrent_initializer", "gamma_initializer",
                    "beta_initializer", "moving_mean_initializer", "moving_variance_initializer",
                    "depthwise_initializer", "pointwise_initializer", "embeddings_initializer")


def snake_case(name: str) -> str:
    """Keras's object-path name of a class: MaxPooling2D -> max_pooling2d, SimpleRNN -> simple_rnn."""
    s = re.sub(r"\W+", "", name)
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", s)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def normalize(value):
    """Lists -> tuples, recursively, for comparing config values."""
    if isinstance(value, list):
        return tuple(normalize(v) for v in value)
    return value
