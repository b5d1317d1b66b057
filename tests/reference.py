"""Plain float64 NumPy references for every fastnn kernel (clarity over speed).

Each kernel family keeps its references in tests/ref_<family>.py; this module
gathers them so tests import one place: ``import reference as ref``.
"""
from ref_conv import *  # noqa: F401,F403
from ref_pool import *  # noqa: F401,F403
from ref_activation import *  # noqa: F401,F403
from ref_loss import *  # noqa: F401,F403
from ref_norm import *  # noqa: F401,F403
from ref_dense import *  # noqa: F401,F403
from ref_optim import *  # noqa: F401,F403
from ref_augment import *  # noqa: F401,F403
from ref_rnn import *  # noqa: F401,F403
