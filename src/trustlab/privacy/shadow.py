"""The shadow-model attack of Shokri et al. (2017)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Constraint, InstanceOf, Integer, validate_params
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.privacy._scores import query_logits
from trustlab.privacy.base import MEMBERSHIP_ATTACKS, MembershipInferenceAttack
from trustlab.privacy.reference import ReferenceModels, check_population, population_hash

__all__ = ["ShadowModelAttack"]

MSG_NOT_THE_POPULATION = (
    "ShadowModelAttack needs the population the reference models were trained on, to know "
    "which shadow output was IN; population_x and population_y ({n_given} examples) are "
    "another ({n_saved} examples)."
)


def _features(logits: torch.Tensor) -> np.ndarray:
    """The attack models' input: the log-probability vector, shape (n, n_classes)."""
    return torch.log_softmax(logits, dim=-1).numpy()


@MEMBERSHIP_ATTACKS.register("shadow")
class ShadowModelAttack(MembershipInferenceAttack):
    """Shadow-model membership inference (Shokri et al., 2017).

    The reference models serve as shadow models: for each of them the attacker knows which
    population examples it trained on, so its outputs on the population are labelled
    IN/OUT training data for an attack classifier. One classifier per class (the true label
    of the example) learns to tell a shadow model's output on a member from its output on a
    non-member; the target's output on a candidate goes to the classifier of the candidate's
    class, whose log-odds of "member" is the score.

    Threat model: black-box access to the target's output vector, the candidates' labels, and
    data from the training distribution to train shadow models with the target's recipe.

    Shapes: ``logits`` (n_examples, n_classes); scores (n_examples,).

    Differences from the paper: the attack models are logistic regressions on standardised
    log-probability vectors (the paper trains small networks on probability vectors); a class
    with fewer than ``min_rows`` shadow outputs of either kind is scored by one classifier fitted
    on all classes. The classifiers are fitted once, at the first :meth:`infer`, and reused.

    Parameters
    ----------
    reference : ReferenceModels
        The shadow models.
    population_x, population_y : array-like
        The population the reference models were trained on (checked against its hash).
    min_rows : int, default 20
        Fewest IN and OUT shadow outputs a class needs for its own attack classifier.
    batch_size : int, default 512
        Examples per forward pass.

    References
    ----------
    .. [1] R. Shokri, M. Stronati, C. Song and V. Shmatikov, "Membership Inference Attacks
       Against Machine Learning Models", IEEE S&P 2017.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 3)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> refs = ReferenceModels.train(architecture="mlp",
    ...     arguments={"in_features": 3, "hidden": [8]}, x=x, y=y, n_models=2, epochs=2)
    >>> attack = ShadowModelAttack(reference=refs, population_x=x, population_y=y)
    >>> attack.infer(model=refs.models[0], x=x, y=y).shape
    (40,)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "reference": InstanceOf(ReferenceModels, "a ReferenceModels"),
        "min_rows": Integer(low=1),
    }

    reference: ReferenceModels
    min_rows: int

    def __init__(
        self,
        *,
        reference: ReferenceModels,
        population_x: ArrayLike,
        population_y: ArrayLike,
        min_rows: int = 20,
        batch_size: int = 512,
    ) -> None:
        self.reference = reference
        self.population_x = population_x
        self.population_y = population_y
        self.min_rows = min_rows
        self.batch_size = batch_size
        self._classifiers: dict[int, Any] | None = None
        validate_params(self)

    def _attack_classifiers(self) -> dict[int, Any]:
        """The fitted classifier of each class, and of all classes under key -1."""
        if self._classifiers is not None:
            return self._classifiers
        inputs, labels = check_population(
            self.population_x, self.population_y, names=("population_x", "population_y")
        )
        if population_hash(inputs, labels) != self.reference.population.get("sha256"):
            raise ConfigurationError(
                MSG_NOT_THE_POPULATION.format(
                    n_given=len(labels), n_saved=self.reference.population.get("n")
                )
            )
        logits = self.reference.logits(inputs, batch_size=self.batch_size).double()
        features = _features(logits.reshape(-1, logits.shape[-1]))
        member = self.reference.membership.reshape(-1)
        classes = np.tile(labels.numpy(), self.reference.n_models)
        classifiers: dict[int, Any] = {-1: self._fit(features, member)}
        for label in np.unique(classes):
            rows = classes == label
            n_in = int(member[rows].sum())
            if min(n_in, int(rows.sum()) - n_in) >= self.min_rows:
                classifiers[int(label)] = self._fit(features[rows], member[rows])
        self._classifiers = classifiers
        return classifiers

    @staticmethod
    def _fit(features: np.ndarray, member: np.ndarray) -> Any:
        if member.all() or not member.any():  # one kind only: a constant score
            return None
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        return model.fit(features, member.astype(np.int64))

    def infer_from_logits(self, *, logits: ArrayLike, y: ArrayLike) -> FloatArray:
        """Scores from the target's logits: each class's attack classifier's log-odds.

        The shadow models' outputs on their own population train the classifiers (once).
        """
        target, labels = query_logits(logits, y)
        features = _features(target[0])
        classifiers = self._attack_classifiers()
        scores = np.zeros(len(labels), dtype=np.float64)
        classes = labels.numpy()
        for label in np.unique(classes):
            rows = classes == label
            classifier = classifiers.get(int(label), classifiers[-1])
            if classifier is not None:
                scores[rows] = classifier.decision_function(features[rows])
        return scores
