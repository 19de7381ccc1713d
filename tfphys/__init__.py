"""tfphys — TensorFlow/Keras models for machine learning in physics.

The package follows the data flow of the four papers it implements::

    data generators -> HDF5 files -> tf.data pipelines -> Keras models -> one trainer -> run dir

Importing ``tfphys`` is cheap: TensorFlow is imported by the sub-packages that need it
(``tfphys.data`` never does).
"""

from tfphys.errors import TfphysError

__version__ = "0.1.0"
__all__ = ["TfphysError", "__version__"]
