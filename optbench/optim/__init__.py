"""Optimizers: the scratch implementations (one file each, on the shared ``ScratchOptimizer``
base) and the registry that builds them."""

from optbench.optim.adadelta import Adadelta
from optbench.optim.adagrad import Adagrad
from optbench.optim.adam import Adam
from optbench.optim.base import ScratchOptimizer
from optbench.optim.momentum import Momentum
from optbench.optim.rmsprop import RMSprop
from optbench.optim.sgd import SGD

__all__ = ["ScratchOptimizer", "SGD", "Momentum", "Adagrad", "RMSprop", "Adam", "Adadelta"]
