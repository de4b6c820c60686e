"""The precisions a run can train in, by the name a TrainConfig gives them.

mixed_bfloat16 (Keras's name for the policy) keeps the parameters, gradients, optimizer state,
the data and every elementwise kernel in float32; the operands of every matmul are bfloat16 and
their products are summed in float32 (engine/bfloat16.py, engine/gemm.py).
"""
import numpy as np

# name -> (the float type of the parameters and the data, whether matmul operands are bfloat16)
DTYPES = {"float32": (np.float32, False), "float64": (np.float64, False),
          "mixed_bfloat16": (np.float32, True)}


def parameter_dtype(name):
    """The float type of the parameters (and of the data) of precision `name`."""
    return np.dtype(DTYPES[name][0])


def is_mixed(name):
    """Whether precision `name` has bfloat16 matmul operands."""
    return DTYPES[name][1]
