"""The FFCV classes this package uses, imported without the compilation FFCV does at import.

``ffcv.fields.rgb_image`` builds its two-entry table of image modes (``'jpg'``, ``'raw'``) as a
numba typed Dict, and filling one compiles numba's dictionary code: about 3.5 s of CPU in every
process that imports FFCV (each Ray Train worker, each data writer), three quarters of FFCV's
import. The table is read from Python only (the modes' numbers are taken out before any
pipeline is compiled), never from compiled code, so a plain dict serves: ``numba.typed.Dict``
reads as ``dict`` while FFCV is imported, and is numba's own again right after. A FFCV that used
the table inside compiled code would fail to compile its decoders, loudly, not run wrongly.

Imported lazily by the loaders and writers (never at the package's import), so a process that
only reads configs or results never pays for FFCV, numba or this module.
"""

import sys

if "ffcv" not in sys.modules:  # (imported first elsewhere, it compiled: nothing to spare)
    import numba.typed

    # a module attribute wins over numba.typed's lazy __getattr__, which answers again once
    # the attribute is deleted
    numba.typed.Dict = dict
    try:
        import ffcv  # noqa: F401
    finally:
        del numba.typed.Dict

from ffcv.fields import IntField, NDArrayField, RGBImageField  # noqa: E402
from ffcv.fields.basics import IntDecoder  # noqa: E402
from ffcv.fields.decoders import (  # noqa: E402
    CenterCropRGBImageDecoder,
    NDArrayDecoder,
    RandomResizedCropRGBImageDecoder,
    SimpleRGBImageDecoder,
)
from ffcv.loader import Loader, OrderOption  # noqa: E402
from ffcv.transforms import (  # noqa: E402
    RandomHorizontalFlip,
    RandomTranslate,
    Squeeze,
    ToDevice,
    ToTensor,
    ToTorchImage,
)
from ffcv.writer import DatasetWriter  # noqa: E402

__all__ = [
    "CenterCropRGBImageDecoder",
    "DatasetWriter",
    "IntDecoder",
    "IntField",
    "Loader",
    "NDArrayDecoder",
    "NDArrayField",
    "OrderOption",
    "RGBImageField",
    "RandomHorizontalFlip",
    "RandomResizedCropRGBImageDecoder",
    "RandomTranslate",
    "SimpleRGBImageDecoder",
    "Squeeze",
    "ToDevice",
    "ToTensor",
    "ToTorchImage",
]
