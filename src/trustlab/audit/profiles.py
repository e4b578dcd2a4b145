"""How much work each section does: the ``quick``, ``standard`` and ``thorough`` profiles.

``quick`` finishes in under two minutes on a CPU for the digits CNN: PGD instead of AutoAttack,
the loss-threshold membership attack only, 200 bootstrap resamples. ``standard`` runs
AutoAttack (its standard version) and RMIA with two reference models, as a published
evaluation would; ``thorough`` attacks more examples and trains more reference models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from trustlab.core.errors import ConfigurationError

__all__ = ["PROFILES", "Profile", "get_profile"]

MSG_UNKNOWN_PROFILE = "Unknown profile {name!r}; the profiles are {known}."


@dataclass(frozen=True)
class Profile:
    """The settings of one profile.

    Attributes
    ----------
    name : str
    n_bootstrap : int
        Bootstrap resamples of every confidence interval.
    n_attack : int
        Examples the evasion attacks run on (a seeded subsample of the data).
    attack : {"pgd", "autoattack"}
        The evaluation at the stated eps.
    pgd_steps : int
        Steps of PGD (the evaluation with ``attack="pgd"`` and the eps curve).
    eps_factors : tuple of float
        The robust-accuracy-vs-eps curve, as multiples of the stated eps.
    sanity_examples : int
        Examples the robustness sanity checks run on.
    square_queries : int
        Query budget of Square, the black-box attack (sanity checks; models without gradients).
    n_reference_models : int
        Reference models of RMIA (0: the loss-threshold attack only).
    reference_epochs : int
        Training epochs of each reference model.
    corruption_severities : tuple of int
        Severities (1-5) of the natural corruptions (images in [0, 1] only).
    n_explain : int
        Examples in the grid of attribution maps and the randomisation check.
    explain_methods : tuple of str
        Attribution methods (registered names of :mod:`trustlab.explain`).
    """

    name: str
    n_bootstrap: int
    n_attack: int
    attack: str
    pgd_steps: int
    eps_factors: tuple[float, ...]
    sanity_examples: int
    square_queries: int
    n_reference_models: int
    reference_epochs: int
    corruption_severities: tuple[int, ...]
    n_explain: int
    explain_methods: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        n_bootstrap=200,
        n_attack=200,
        attack="pgd",
        pgd_steps=10,
        eps_factors=(0.25, 0.5, 1.0, 2.0),
        sanity_examples=64,
        square_queries=200,
        n_reference_models=0,
        reference_epochs=0,
        corruption_severities=(3,),
        n_explain=4,
        explain_methods=("saliency", "integrated_gradients"),
    ),
    "standard": Profile(
        name="standard",
        n_bootstrap=1000,
        n_attack=200,
        attack="autoattack",
        pgd_steps=20,
        eps_factors=(0.25, 0.5, 1.0, 1.5, 2.0, 4.0),
        sanity_examples=64,
        square_queries=500,
        n_reference_models=2,
        reference_epochs=20,
        corruption_severities=(1, 2, 3, 4, 5),
        n_explain=8,
        explain_methods=("saliency", "integrated_gradients", "smoothgrad"),
    ),
    "thorough": Profile(
        name="thorough",
        n_bootstrap=2000,
        n_attack=1000,
        attack="autoattack",
        pgd_steps=50,
        eps_factors=(0.125, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0),
        sanity_examples=128,
        square_queries=1000,
        n_reference_models=4,
        reference_epochs=40,
        corruption_severities=(1, 2, 3, 4, 5),
        n_explain=16,
        explain_methods=("saliency", "integrated_gradients", "smoothgrad", "gradient_shap"),
    ),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (a :class:`Profile` is returned as it is, so a custom
    profile can be built with ``dataclasses.replace(PROFILES["quick"], ...)``)."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigurationError(
            MSG_UNKNOWN_PROFILE.format(name=name, known=", ".join(PROFILES))
        ) from None
