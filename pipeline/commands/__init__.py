"""The user commands: ``denoise-bench`` (:mod:`.bench`: score your own models under the protocol)
and ``denoise-classify`` (:mod:`.classify`: denoise and classify your own images).

TensorFlow's C++ log level is set here, before any of them imports it; their ``--help`` imports
none of it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
