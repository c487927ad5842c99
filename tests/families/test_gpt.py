import pytest
import torch

from genlab.families.gpt import GPT, GPTConfig
from genlab.families.lstm import LSTM, LSTMConfig
from genlab.sampling.decode import (
    Int8Linear,
    SplitLinear,
    decoding_model,
    inference_copy,
    int8_available,
    packed_copy,
    split_copy,
)
from genlab.sampling.logits import SamplingSettings, choose, process_logits
from genlab.sampling.tokens import sample_tokens


def tiny_gpt(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = GPTConfig(**{"vocab_size": 50, "block_size": 32, "n_layer": 2, "n_head": 2, "n_embd": 32, **kw})
    return GPT(cfg).eval()


def test_causal_mask_future_tokens_never_change_earlier_logits():
    model = tiny_gpt()
    idx = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(1))
    base = model(idx)
    for t in (0, 7, 19):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 50
        out = model(changed)
        assert torch.equal(out[:, :t], base[:, :t])  # positions before t see nothing of it
        assert not torch.allclose(out[:, t:], base[:, t:])


def test_kv_cache_chunks_match_full_forward():
    model = tiny_gpt()
    idx = torch.randint(0, 50, (3, 24), generator=torch.Generator().manual_seed(2))
    full = model(idx)
    cache = model.new_cache(3)
    pieces = [model(idx[:, :10], cache), model(idx[:, 10:11], cache), model(idx[:, 11:24], cache)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def reference_sampler(model, prompt, s, generator):
    """Recompute the whole sequence every step (nanoGPT's sampler): the slow, obviously right way."""
    ids = prompt.unsqueeze(0).expand(s.num_samples, -1)
    out = []
    for _ in range(s.max_new_tokens):
        logits = model(ids)[:, -1]
        seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, ids, True)
        token = choose(process_logits(logits, s, seen), s, generator)
        out.append(token)
        ids = torch.cat([ids, token[:, None]], dim=1)
    return torch.stack(out, dim=1)


def test_kv_cache_sampling_equals_full_recompute_token_for_token():
    model = tiny_gpt()
    prompt = torch.tensor([1, 2, 3, 4])
    for s in [
        SamplingSettings(max_new_tokens=25, temperature=0.0),
        SamplingSettings(max_new_tokens=25, temperature=0.9, top_k=10, num_samples=4),
        SamplingSettings(max_new_tokens=25, temperature=1.3, top_p=0.8, repetition_penalty=1.3, num_samples=3),
    ]:
        with torch.inference_mode():
            expected = reference_sampler(model, prompt, s, torch.Generator().manual_seed(5))
        got = torch.stack(list(sample_tokens(model, prompt, s, torch.Generator().manual_seed(5))), dim=1)
        assert torch.equal(got, expected)


def test_sampling_past_the_context_keeps_going():
    model = tiny_gpt()
    s = SamplingSettings(max_new_tokens=100, temperature=1.0)
    tokens = list(sample_tokens(model, torch.tensor([1]), s, torch.Generator().manual_seed(0)))
    assert len(tokens) == 100  # 3x the 32-token context, by sliding the window


def test_lstm_state_carried_matches_full_forward():
    torch.manual_seed(0)
    model = LSTM(LSTMConfig(vocab_size=40, n_layer=2, n_embd=24)).eval()
    idx = torch.randint(0, 40, (2, 30))
    full = model(idx)
    state = model.new_cache(2)
    steps = [model(idx[:, :5], state)] + [model(idx[:, t : t + 1], state) for t in range(5, 30)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make", [lambda m: split_copy(m, 2), lambda m: split_copy(m, 4),
                                  lambda m: packed_copy(m, 3), lambda m: decoding_model(m, 3)],
                         ids=["split2", "split4", "packed", "chosen"])
def test_decoding_variants_match_the_plain_model(make):
    model = tiny_gpt()
    idx = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(4))
    fast = make(model)
    with torch.inference_mode():
        full = model(idx)
        cache = fast.new_cache(3)
        steps = torch.cat([fast(idx[:, i : i + 1], cache) for i in range(idx.shape[1])], dim=1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)


def test_split_linear_keeps_layers_it_cannot_split():
    fast = split_copy(tiny_gpt(), 4)
    assert isinstance(fast.transformer.h[0].mlp.c_fc, SplitLinear)  # 128 outputs: four slices of 32
    assert type(fast.lm_head) is torch.nn.Linear  # 50 outputs do not split in four


def test_int8_linear_rounds_each_row_to_its_own_scale():
    lin = torch.nn.Linear(64, 48)
    q = Int8Linear(lin)
    scale = lin.weight.detach().abs().amax(dim=1, keepdim=True) / 127
    # each weight lies within half a step of its row's grid, and each row's largest one is +-127
    assert ((q.weight.float() * scale - lin.weight.detach()).abs() <= scale / 2 + 1e-7).all()
    assert (q.weight.abs().amax(dim=1) == 127).all()
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(2))
    want = x @ (q.weight.float() * q.scale.float()[:, None]).t() + lin.bias.detach()
    torch.testing.assert_close(q(x.bfloat16()).float(), want, atol=0.05, rtol=0.02)


def test_int8_copy_decodes_close_to_the_fp32_model():
    model = tiny_gpt()
    idx = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(4))
    fast = decoding_model(model, 3, "int8")
    assert isinstance(fast.transformer.h[0].mlp.c_proj, Int8Linear)
    with torch.inference_mode():
        want = model(idx).log_softmax(-1)
        cache = fast.new_cache(3)
        got = torch.cat([fast(idx[:, i : i + 1], cache) for i in range(idx.shape[1])], dim=1).float().log_softmax(-1)
    kl = torch.nn.functional.kl_div(got, want, log_target=True, reduction="none").sum(-1)  # KL(fp32 || int8)
    assert kl.max() < 1e-4 and (got.argmax(-1) == want.argmax(-1)).float().mean() > 0.9


def test_int8_keeps_widths_its_kernel_cannot_take_in_bf16():
    assert int8_available(32) and not int8_available(24)  # the kernel reads inputs 16 at a time
    fast = inference_copy(tiny_gpt(n_embd=24, n_head=2), "int8")
    assert type(fast.transformer.h[0].attn.c_attn) is torch.nn.Linear  # 24 inputs: kept, in bf16
    assert isinstance(fast.transformer.h[0].mlp.c_proj, Int8Linear)  # 96 inputs: int8
    assert fast.transformer.h[0].attn.c_attn.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("past", [0, 5])
def test_matmul_attention_equals_sdpa(past):
    from genlab.families.gpt import matmul_attention

    g = torch.Generator().manual_seed(5)
    q = torch.randn(2, 3, 7, 16, generator=g)
    k, v = torch.randn(2, 2, 3, 7 + past, 16, generator=g).unbind(0)
    mask = torch.ones(7, 7 + past, dtype=torch.bool).tril(diagonal=past) if past else None
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=not past)
    torch.testing.assert_close(matmul_attention(q, k, v, mask, not past, 0.0), want, atol=1e-5, rtol=1e-5)
    got16 = matmul_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask, not past, 0.0)
    torch.testing.assert_close(got16.float(), want, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("kw", [{}, {"bias": False, "activation": "gelu_tanh"}])
def test_decode_step_equals_forward_token_by_token(kw):
    model = tiny_gpt(**kw)
    idx = torch.randint(0, 50, (3, 10), generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        full = model(idx)
        cache = model.new_cache(3)
        model(idx[:, :4], cache)  # a prompt first, as sampling does
        steps = torch.cat([model.decode_step(idx[:, i : i + 1], cache) for i in range(4, 10)], dim=1)
    torch.testing.assert_close(steps, full[:, 4:], atol=1e-5, rtol=1e-5)
    assert cache.pos == 10
