"""Finding a layer of a model by name, or its last convolution."""

from __future__ import annotations

from torch import nn

from trustlab.core.errors import ConfigurationError

MSG_NO_LAYER = "The model has no layer named {name!r}. Its convolution layers: {known}."
MSG_NO_CONV = (
    "The model has no nn.Conv2d layer, so Grad-CAM cannot find one; name a layer with "
    "layer='...' (one of {known})."
)


def find_layer(model: nn.Module, name: str | None) -> tuple[str, nn.Module]:
    """The module called ``name`` (as in ``model.named_modules()``), or the last ``nn.Conv2d``.

    Raises
    ------
    ConfigurationError
        If there is no such module; the message lists the candidates.
    """
    modules = dict(model.named_modules())
    convs = [key for key, module in modules.items() if isinstance(module, nn.Conv2d)]
    if name is None:
        if not convs:
            known = ", ".join(repr(k) for k in modules if k) or "none"
            raise ConfigurationError(MSG_NO_CONV.format(known=known))
        return convs[-1], modules[convs[-1]]
    if name not in modules:
        raise ConfigurationError(
            MSG_NO_LAYER.format(name=name, known=", ".join(map(repr, convs)) or "none")
        )
    return name, modules[name]
