"""Optimizers: the scratch implementations (one file each) and the registry that builds them."""

from optbench.optim.adadelta import Adadelta
from optbench.optim.adagrad import Adagrad
from optbench.optim.adam import Adam
from optbench.optim.momentum import Momentum
from optbench.optim.rmsprop import RMSprop
from optbench.optim.sgd import SGD

__all__ = ["SGD", "Momentum", "Adagrad", "RMSprop", "Adam", "Adadelta"]
