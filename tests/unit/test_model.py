"""The sequence model: shapes, masking, learning, and what a surprise means."""

import pytest
import torch

from seqrisk.model.sequence_model import ModelConfig, SequenceModel, next_event_loss, surprises

CONFIG = ModelConfig(vocab_size=12, gap_buckets=8, max_len=8, arch="transformer", d_model=32, n_layers=2, n_heads=4, dropout=0.0)
TOKENS = torch.tensor([[3, 4, 5, 6, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8, 9, 10], [3, 0, 0, 0, 0, 0, 0, 0]])
GAPS = torch.tensor([[7, 2, 3, 1, 0, 0, 0, 0], [7, 2, 3, 1, 2, 2, 2, 2], [7, 0, 0, 0, 0, 0, 0, 0]])


@pytest.fixture(params=["transformer", "gru"])
def model(request):
    torch.manual_seed(0)
    return SequenceModel(ModelConfig(**{**CONFIG.to_dict(), "arch": request.param})).eval()


def test_logits_have_one_distribution_per_step(model):
    logits, gap_logits = model(TOKENS, GAPS)
    assert logits.shape == (3, 8, 12) and gap_logits.shape == (3, 8, 8)  # (B, T, V), (B, T, G)


def test_padding_never_influences_a_real_step(model):
    before = surprises(model, TOKENS, GAPS)
    other_padding = TOKENS.clone()
    other_padding[0, 4:] = 11  # whatever follows the session's end...
    other_gaps = GAPS.clone()
    other_gaps[0, 4:] = 5
    after = surprises(model, other_padding, other_gaps)
    torch.testing.assert_close(before["nll"][0, :4], after["nll"][0, :4])  # ...changes nothing before it
    assert (before["nll"][0, 4:] == 0).all() and (before["rank"][0, 4:] == 0).all()


def test_a_single_event_or_empty_window_gives_finite_zero_surprise(model):
    out = surprises(model, torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long))
    assert torch.isfinite(out["nll"]).all() and (out["nll"] == 0).all()
    assert (surprises(model, TOKENS, GAPS)["nll"][2] == 0).all()


def test_loss_falls_when_overfitting_one_batch(model):
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = next_event_loss(model(TOKENS, GAPS), TOKENS, GAPS).item()
    for _ in range(150):
        loss = next_event_loss(model(TOKENS, GAPS), TOKENS, GAPS)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first


def test_rank_one_means_the_observed_event_was_the_top_guess(model):
    out = surprises(model, TOKENS, GAPS, top_k=3)
    real = TOKENS[:, 1:] != 0
    top_guess = out["expected"][:, 1:, 0]
    agrees = (top_guess == TOKENS[:, 1:]) & real
    assert ((out["rank"][:, 1:] == 1) == agrees)[real].all()
    assert (out["rank"][:, 1:][real] >= 1).all() and (out["rank"][:, 1:][real] <= 12).all()


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="'transformer' or 'gru'"):
        SequenceModel(ModelConfig(**{**CONFIG.to_dict(), "arch": "lstm"}))


def test_a_gap_is_judged_against_its_event(model):
    """Event 4 always comes 1 bucket after its predecessor and event 5 always 6: each gap is judged
    against the event it comes with, so the same event at the other's gap is a surprise."""
    tokens = torch.tensor([[3, 4, 0, 0, 0, 0, 0, 0], [3, 5, 0, 0, 0, 0, 0, 0]]).repeat(8, 1)
    gaps = torch.tensor([[7, 1, 0, 0, 0, 0, 0, 0], [7, 6, 0, 0, 0, 0, 0, 0]]).repeat(8, 1)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = next_event_loss(model(tokens, gaps), tokens, gaps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    swapped = gaps[:2].flip(0)  # event 4 after 6 buckets, event 5 after 1
    usual, unusual = surprises(model, tokens[:2], gaps[:2]), surprises(model, tokens[:2], swapped)
    assert (usual["gap_nll"][:, 1] < 0.1).all() and (unusual["gap_nll"][:, 1] > 2.0).all()
    torch.testing.assert_close(usual["nll"], unusual["nll"])  # the events' surprise is the events' alone


def test_the_gaps_loss_trains_the_gap_head_alone(model):
    """The body learns the events only: the gaps' cross-entropy reaches the gap head and the next event's embedding, nothing else."""
    logits, gap_logits = model.train()(TOKENS, GAPS)
    gap_loss = next_event_loss((logits.detach(), gap_logits), TOKENS, GAPS)
    gap_loss.backward()
    gap_part = ("gap_head.", "next_emb.")
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith(gap_part))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for name, p in model.named_parameters() if name.startswith(gap_part))
