"""The token vocabulary: learned from the data, saved as JSON beside the windows, carried by models.

Tokens are event types (any vocabulary), optionally joined with a category bucket or a price bucket
(edges at learned price quantiles, so tiny and huge amounts get tokens of their own). Ids 0 to 3 are
reserved: padding, unknown (never seen when the vocabulary was learned), rare (seen fewer than
`min_count` times, or past `max_size`) and the end of a session (the model predicts it like an
event, so a session that stops early, a checkout without its payment, is surprising). The same
object holds how time gaps are bucketed, so a scorer cuts windows exactly as the trainer's windows
were cut.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

PAD, UNK, RARE, END = 0, 1, 2, 3
SPECIAL = ("<pad>", "<unk>", "<rare>", "<end>")
FORMAT = 2  # 2: adds the end-of-session token
NONE, OTHER_CATEGORY = "none", "other"  # the bucket of an event without a category (or price); of a rarer category


def _price_bucket(edges: Sequence[float], price: float) -> str:
    """`p<k>`: k = how many edges are at or below `price` (p0 below the first edge)."""
    return f"p{sum(1 for edge in edges if price >= edge)}"


GAP_BUCKETS_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)  # upper bounds (seconds) of the time-gap buckets: the one default


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]  # index = token id; starts with SPECIAL
    counts: dict[str, int]  # how often each learned token was seen (rare ones included)
    composite: str = "none"  # "none", "category" or "price"
    top_categories: tuple[str, ...] = ()
    price_edges: tuple[float, ...] = ()  # ascending; bucket k holds prices from edge k-1 up to below edge k
    gap_buckets_s: tuple[float, ...] = GAP_BUCKETS_S
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    # -- learning ---------------------------------------------------------------------------

    @classmethod
    def learn(
        cls,
        counts: dict[str, int],
        *,
        min_count: int,
        max_size: int,
        composite: str = "none",
        top_categories: Sequence[str] = (),
        price_edges: Sequence[float] = (),
        gap_buckets_s: Sequence[float] = GAP_BUCKETS_S,
    ) -> Vocabulary:
        """Keep tokens seen at least `min_count` times, most frequent first (ties by name)."""
        frequent = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        kept = frequent[: max_size - len(SPECIAL)]
        return cls(
            tokens=SPECIAL + tuple(kept),
            counts=dict(sorted(counts.items())),
            composite=composite,
            top_categories=tuple(top_categories),
            price_edges=tuple(float(e) for e in price_edges),
            gap_buckets_s=tuple(float(b) for b in gap_buckets_s),
        )

    # -- encoding ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def gap_bucket_count(self) -> int:
        """Padding (0), one bucket per boundary plus one past the last, and the session start."""
        return len(self.gap_buckets_s) + 3

    def token_text(self, event_type: str, category: str | None, price: float | None = None) -> str:
        if self.composite == "none":
            return event_type
        if self.composite == "price":
            if price is None or math.isnan(price):
                return f"{event_type}|{NONE}"
            return f"{event_type}|{_price_bucket(self.price_edges, price)}"
        bucket = NONE if category is None else category if category in self.top_categories else OTHER_CATEGORY
        return f"{event_type}|{bucket}"

    def describe(self, token: str) -> str:
        """A token as an analyst reads it: `purchase (< 2.95)`, `view (2.95-90.13)`, `view (shoes)`, `login`."""
        if token == SPECIAL[END]:
            return "end of session"
        kind, _, bucket = token.partition("|")
        if not bucket or bucket == NONE:
            return kind
        if self.composite != "price":
            return f"{kind} ({bucket})"
        k, edges = int(bucket[1:]), self.price_edges
        if not edges:
            return kind
        if k == 0:
            return f"{kind} (< {edges[0]:g})"
        if k == len(edges):
            return f"{kind} (>= {edges[-1]:g})"
        return f"{kind} ({edges[k - 1]:g}-{edges[k]:g})"

    def encode(
        self,
        event_types: Sequence[str],
        categories: Sequence[str | None] | None = None,
        prices: Sequence[float | None] | None = None,
    ) -> np.ndarray:
        """Token ids for one session's events; unseen tokens give UNK, rare ones RARE."""
        cats = categories if categories is not None else [None] * len(event_types)
        amounts = prices if prices is not None else [None] * len(event_types)
        ids = np.empty(len(event_types), dtype=np.int32)
        for i, (kind, cat, price) in enumerate(zip(event_types, cats, amounts)):
            text = self.token_text(kind, cat, price)
            ids[i] = self._ids.get(text, RARE if text in self.counts else UNK)
        return ids

    def encode_gaps(self, gaps_s: Sequence[float | None]) -> np.ndarray:
        """Gap bucket ids: the first event (no gap) gets the session-start bucket."""
        gaps = np.array([np.nan if g is None else g for g in gaps_s], dtype=np.float64)
        buckets = 1 + np.searchsorted(np.asarray(self.gap_buckets_s), gaps, side="left")
        buckets[np.isnan(gaps)] = self.gap_bucket_count - 1
        if len(buckets):
            buckets[0] = self.gap_bucket_count - 1
        return buckets.astype(np.int32)

    # -- storage ----------------------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the saved form (`to_json`): what the windows table records it by."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "tokens": list(self.tokens),
                "counts": self.counts,
                "composite": self.composite,
                "top_categories": list(self.top_categories),
                "price_edges": list(self.price_edges),
                "gap_buckets_s": list(self.gap_buckets_s),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"vocabulary format {data.get('format')!r} is not {FORMAT}; re-run sessionize over every date, then train")
        return cls(
            tokens=tuple(data["tokens"]),
            counts=data["counts"],
            composite=data["composite"],
            top_categories=tuple(data["top_categories"]),
            price_edges=tuple(data.get("price_edges", ())),  # absent in files written before price tokens
            gap_buckets_s=tuple(data["gap_buckets_s"]),
        )


class EncodedSessions(NamedTuple):
    """A batch of sessions' token ids and gap bucket ids, aligned with its rows: encoded once, read by every detector."""

    tokens: list[np.ndarray]
    gaps: list[np.ndarray]


def encode_sessions(sessions: pd.DataFrame, vocabulary: Vocabulary) -> EncodedSessions:
    """`session_tokens` and `session_gaps` of a batch, as lists."""
    return EncodedSessions(list(session_tokens(sessions, vocabulary)), list(session_gaps(sessions, vocabulary)))


def session_tokens(sessions: pd.DataFrame, vocabulary: Vocabulary) -> Iterator[np.ndarray]:
    """Each session's token ids (from its columns event_types, categories, prices), encoded with `vocabulary`."""
    for types, categories, prices in sessions[["event_types", "categories", "prices"]].itertuples(index=False):
        yield vocabulary.encode(list(types), None if categories is None else list(categories), None if prices is None else list(prices))


def session_gaps(sessions: pd.DataFrame, vocabulary: Vocabulary) -> Iterator[np.ndarray]:
    """Each session's gap bucket ids (from its column gaps_s), encoded with `vocabulary`."""
    for gaps_s in sessions["gaps_s"]:
        yield vocabulary.encode_gaps(list(gaps_s))
