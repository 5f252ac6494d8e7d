"""The sequence model: a small causal Transformer (or GRU) that predicts each session's next event.

Inputs per step are the event token and its time-gap bucket; position t sees steps 0..t and
predicts the token at t+1. A step's *surprise* is the negative log-likelihood the model gave the
observed event, and its *rank* among all tokens (1: the model's top guess). Padding (token 0) never
influences a real step: attention is causal and padded keys are masked.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from seqrisk.sessions.vocabulary import PAD


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    gap_buckets: int
    max_len: int
    arch: Literal["transformer", "gru"]  # the settings' defaults live in model/settings.py (ModelSettings)
    d_model: int
    n_layers: int
    n_heads: int
    dropout: float

    def to_dict(self) -> dict:
        return asdict(self)


class SequenceModel(nn.Module):
    body: nn.Module
    causal: torch.Tensor  # (max_len, max_len) bool, True above the diagonal (transformer only)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.token_emb = nn.Embedding(config.vocab_size, config.d_model, padding_idx=PAD)
        self.gap_emb = nn.Embedding(config.gap_buckets, config.d_model, padding_idx=PAD)
        if config.arch == "transformer":
            self.pos_emb = nn.Embedding(config.max_len, config.d_model)
            layer = nn.TransformerEncoderLayer(
                config.d_model, config.n_heads, 4 * config.d_model, config.dropout, batch_first=True, norm_first=True
            )
            self.body = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
            self.register_buffer("causal", torch.ones(config.max_len, config.max_len, dtype=torch.bool).triu(1), persistent=False)
        elif config.arch == "gru":
            self.body = nn.GRU(
                config.d_model, config.d_model, config.n_layers, batch_first=True, dropout=config.dropout if config.n_layers > 1 else 0.0
            )
        else:
            raise ValueError(f"arch must be 'transformer' or 'gru', got {config.arch!r}")
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)
        self.next_emb = nn.Embedding(config.vocab_size, config.d_model, padding_idx=PAD)
        self.gap_head = nn.Sequential(nn.Linear(config.d_model, config.d_model), nn.GELU(), nn.Linear(config.d_model, config.gap_buckets))

    def forward(self, tokens: torch.Tensor, gaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits (B, T, V), and the next step's gap-bucket logits given its token (B, T, G).

        tokens, gaps: (B, T) int. Position t sees steps 0..t; its gap logits also see token t+1
        (p(event, gap) = p(event) p(gap | event)); the last position's see padding.
        """
        B, T = tokens.shape
        x = self.token_emb(tokens) + self.gap_emb(gaps)  # (B, T, C)
        if self.config.arch == "transformer":
            x = x + self.pos_emb(torch.arange(T, device=tokens.device))[None]
            padded = tokens == PAD  # (B, T)
            # A fully padded row would make attention NaN; unmask its first key (its outputs are ignored).
            padded = padded & ~(padded.all(dim=1, keepdim=True) & (torch.arange(T, device=tokens.device) == 0))
            x = self.body(x, mask=self.causal[:T, :T], src_key_padding_mask=padded, is_causal=True)
        else:
            x, _ = self.body(x)  # left to right: later padding cannot reach earlier steps
        h = self.norm(x)
        following = F.pad(tokens[:, 1:], (0, 1), value=PAD)  # (B, T): token t+1 at position t
        # The gaps' loss stops at the hidden state: it trains the gap head alone, so the body learns the events only.
        return self.head(h), self.gap_head(h.detach() + self.next_emb(following))  # (B, T, V), (B, T, G)


def next_event_loss(outputs: tuple[torch.Tensor, torch.Tensor], tokens: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting step t+1 (its event, then its gap) from steps <= t, over real targets (in fp32)."""
    logits, gap_logits = (o.float() for o in outputs)
    event = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1), ignore_index=PAD)
    gap = F.cross_entropy(gap_logits[:, :-1].reshape(-1, gap_logits.size(-1)), gaps[:, 1:].reshape(-1), ignore_index=PAD)
    return event + gap


@torch.no_grad()
def surprises(model: SequenceModel, tokens: torch.Tensor, gaps: torch.Tensor, top_k: int = 3) -> dict[str, torch.Tensor]:
    """Per-step surprise of the observed event, and of its gap given the event (steps 1..T-1; step 0 has no prediction).

    Returns nll, gap_nll and rank (B, T), 0 at step 0 and at padding (gap_nll also at the end,
    which has no gap), and the model's `top_k` expected tokens at each step (B, T, k).
    """
    model.eval()
    logits, gap_logits = (o.float() for o in model(tokens, gaps))  # (B, T, V), (B, T, G)
    log_p = F.log_softmax(logits[:, :-1], dim=-1)  # (B, T-1, V)
    observed, observed_gaps = tokens[:, 1:], gaps[:, 1:]  # (B, T-1)
    nll = -log_p.gather(-1, observed.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    gap_nll = -F.log_softmax(gap_logits[:, :-1], dim=-1).gather(-1, observed_gaps.unsqueeze(-1)).squeeze(-1)
    rank = (log_p > -nll.unsqueeze(-1)).sum(-1) + 1  # (B, T-1): 1 + tokens strictly more likely
    real = observed != PAD
    zeros = torch.zeros(tokens.size(0), 1, device=tokens.device)
    expected = log_p.topk(top_k, dim=-1).indices  # (B, T-1, k)
    return {
        "nll": torch.cat([zeros, torch.where(real, nll, 0.0)], dim=1),
        "gap_nll": torch.cat([zeros, torch.where(observed_gaps != PAD, gap_nll, 0.0)], dim=1),
        "rank": torch.cat([zeros.long(), torch.where(real, rank, 0)], dim=1),
        "expected": torch.cat([torch.zeros_like(expected[:, :1]), expected], dim=1),
    }


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to a tenth."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
