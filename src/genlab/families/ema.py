"""An exponential moving average of a network's weights (Polyak averaging), for sampling.

The averaged weights are buffers of the model, so they are saved in model.safetensors beside the raw
weights and restored by resume, yet no optimizer ever sees them. Early on the decay is lowered to
(1 + n) / (10 + n) after n updates (as in TensorFlow's ExponentialMovingAverage with num_updates), so
that a short run is not averaged with its random initialisation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    def __init__(self, net: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.names = [name for name, _ in net.named_parameters()]
        for name, p in net.named_parameters():
            self.register_buffer(name.replace(".", "__"), p.detach().clone())
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self._cache: list = []  # [(update count, averaged copy)]; a list so nn.Module does not register the copy

    def averages(self) -> list[torch.Tensor]:
        return [getattr(self, name.replace(".", "__")) for name in self.names]

    def tracks(self, net: nn.Module) -> bool:
        """Whether `net` still has the weights the average is made of: one with LoRA layers in it has others,
        and is averaged only once they are merged (Family.adopt_weights)."""
        return [name for name, _ in net.named_parameters()] == self.names

    @torch.no_grad()
    def restart(self, net: nn.Module) -> None:
        """Start the average again from `net`'s weights, warm-up included (weights set outside training)."""
        torch._foreach_copy_(self.averages(), [p.detach() for p in net.parameters()])
        self.updates.zero_()
        self._cache.clear()

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        if not self.tracks(net):
            return
        self.updates += 1
        n = int(self.updates)
        decay = min(self.decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(self.averages(), [p.detach() for p in net.parameters()], 1.0 - decay)

    def averaged(self, net: nn.Module) -> nn.Module:
        """A copy of `net` carrying the averaged weights (made once per update count, then reused)."""
        if not self._cache or self._cache[0][0] != int(self.updates):
            clone = copy.deepcopy(net).eval()
            with torch.no_grad():
                for p, avg in zip(clone.parameters(), self.averages(), strict=True):
                    p.copy_(avg)
                    p.requires_grad_(False)
            self._cache[:] = [(int(self.updates), clone)]
        return self._cache[0][1]
