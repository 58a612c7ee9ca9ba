"""Shared test set-up."""

import matplotlib
import torch

matplotlib.use("Agg")  # no window, ever: tests draw into memory

# Tests use tiny models. Two OpenMP threads per pytest-xdist worker on a 2-core machine
# make each tiny forward pass fight for the cores (about 1000x slower); one thread each is right.
torch.set_num_threads(1)
