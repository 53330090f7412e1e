"""scikit-learn estimators trained by fastnn (needs ``pip install fastnn[sklearn]``).

* :class:`MLPClassifier`, :class:`MLPRegressor`: scikit-learn's estimators (same
  parameters, attributes and stopping rules) on fastnn's kernels.
* :class:`Perceptron`: Rosenblatt's rule (:class:`fastnn.Perceptron`) for any two labels.
* :class:`SequentialClassifier`, :class:`SequentialRegressor`: any compiled
  :class:`fastnn.Sequential` in a pipeline or a grid search (the scikeras pattern).

>>> from sklearn.model_selection import GridSearchCV       # doctest: +SKIP
>>> from fastnn.sklearn import MLPClassifier               # doctest: +SKIP
>>> GridSearchCV(MLPClassifier(max_iter=50), {"alpha": [1e-4, 1e-2]}).fit(X, y)  # doctest: +SKIP
"""

from .mlp import MLPClassifier, MLPRegressor
from .perceptron import Perceptron
from .wrappers import SequentialClassifier, SequentialRegressor

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "Perceptron",
    "SequentialClassifier",
    "SequentialRegressor",
]
