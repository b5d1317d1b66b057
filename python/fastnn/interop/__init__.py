"""Moving models in and out: Keras 3 ``.keras`` files, ONNX export, PyTorch state dicts.

Each path needs an optional package, imported only when the path is used:
``h5py`` for ``.keras`` (extra ``pyfastnn[keras]``), ``onnx`` for the export (extra
``pyfastnn[onnx]``); the PyTorch path takes any mapping of names to arrays or tensors.
"""
