import pytest
import torch

from genlab.errors import GenlabError
from genlab.sampling.logits import SamplingSettings, choose, process_logits


def test_top_k_keeps_exactly_k():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    out = process_logits(logits, SamplingSettings(top_k=2), None)
    assert torch.isfinite(out).tolist() == [[False, True, False, True, False]]


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = process_logits(probs.log(), SamplingSettings(top_p=0.75), None)
    # 0.5 < 0.75, 0.5 + 0.3 >= 0.75: the first two tokens make the nucleus
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]
    kept = torch.softmax(out, dim=-1)
    torch.testing.assert_close(kept[0, :2], torch.tensor([0.5, 0.3]) / 0.8)


def test_repetition_penalty_ctrl_semantics():
    logits = torch.tensor([[2.0, -2.0, 2.0, -2.0]])
    seen = torch.tensor([[True, True, False, False]])
    out = process_logits(logits, SamplingSettings(repetition_penalty=2.0), seen)
    assert out.tolist() == [[1.0, -4.0, 2.0, -2.0]]


def test_temperature_zero_is_greedy_and_temperature_scales():
    logits = torch.tensor([[0.0, 1.0, 3.0]])
    s = SamplingSettings(temperature=0.0)
    assert choose(process_logits(logits, s, None), s, torch.Generator()).item() == 2
    torch.testing.assert_close(process_logits(logits, SamplingSettings(temperature=2.0), None), logits / 2)


@pytest.mark.parametrize(
    "bad",
    [dict(temperature=-1), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=0), dict(repetition_penalty=0),
     dict(num_samples=0), dict(max_new_tokens=-1), dict(stop=[""])],
)
def test_nonsensical_controls_are_refused(bad):
    with pytest.raises(GenlabError):
        SamplingSettings(**bad).validate()
