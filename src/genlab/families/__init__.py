"""The registry of model families: name -> Family. Nothing outside a family branches on its name."""

from __future__ import annotations

from genlab.errors import GenlabError
from genlab.families.base import Family
from genlab.families.diffusion import DiffusionFamily
from genlab.families.gan import GANFamily
from genlab.families.gpt import GPTFamily
from genlab.families.lstm import LSTMFamily
from genlab.families.vae import VAEFamily

FAMILIES: dict[str, Family] = {
    f.name: f for f in (GPTFamily(), LSTMFamily(), VAEFamily(), GANFamily(), DiffusionFamily())
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise GenlabError(f"unknown family {name!r}; choose one of: {', '.join(FAMILIES)}") from None
