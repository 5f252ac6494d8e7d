"""The count detector: how far a session's token counts lie from those of normal sessions.

A session becomes a vector of counts, one per token of the model's vocabulary (event type, with a
price or category bucket where the vocabulary has one): the loglizer-style "event count matrix",
and one count more, its item revisits (events on an item the session had already). Normal
sessions with many events revisit items (a gallery swiped, a product compared); a scraper's
many events each on a new item lie off that relation, far along a direction the reference
barely varies in (docs/detectors.md, "Item revisits, and a second injected clickstream").
PCA of the reference sessions' counts gives the principal axes and their variances; a session's
risk is its squared distance from the reference mean in those axes, each scaled by its variance,
with every variance floored at `floor` times the largest one. This is PCA's two classic statistics
in one: Hotelling's T-squared inside the main components plus the squared reconstruction residual
(SPE) outside them, the latter weighted by the floor. It sees what a next-event model can miss: a
step that should have happened n times and happened n-1 times, a checkout without its payment, an
extra repeat, an event type normal sessions never hold. The floor is chosen on evidence in
docs/detectors.md (HDFS logs want it small, contaminated clickstreams want it larger).

A linear model of counts cannot see a combination: two steps that each occur in normal sessions
but never in the same one (an HDFS block replicated and then deleted; a refund in a session that
also changed the payout account). So the detector also keeps which pairs of tokens some reference
session holds together, and every pair of tokens a session holds that no reference session held
together counts as one more unit deviation along a direction the reference never varies in, scaled
like the residual (a token no reference session holds is in the residual already, and each of its
pairs is unseen too: such a session stands out further).

The columns are the vocabulary's first `max_columns` token ids (the most frequent tokens); later
ids count in the `<rare>` column, so the matrix stays narrow whatever the vocabulary's size. Fitted
with scikit-learn's PCA on the reference sample, stored as plain arrays (`count_detector.npz`, no
pickle).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from seqrisk.errors import SeqriskError
from seqrisk.sessions.vocabulary import RARE, Vocabulary


def count_matrix(encoded: Sequence[np.ndarray], revisits: Sequence[int], vocabulary: Vocabulary, token_columns: int) -> np.ndarray:
    """(n_sessions, token columns + 1): each session's token counts (`token_counts`), then its item revisits."""
    return np.column_stack([token_counts(encoded, vocabulary, token_columns), np.asarray(revisits, dtype=np.float64)])


def token_counts(encoded: Sequence[np.ndarray], vocabulary: Vocabulary, max_columns: int) -> np.ndarray:
    """(n_sessions, columns) token counts of each session (`encoded`: its token ids, `vocabulary.session_tokens`)."""
    columns = min(max_columns, vocabulary.size)
    out = np.zeros((len(encoded), columns), dtype=np.float64)
    for row, tokens in enumerate(encoded):
        tokens = np.where(tokens < columns, tokens, RARE)
        out[row] = np.bincount(tokens, minlength=columns)[:columns]
    return out


@dataclass
class CountDetector:
    mean: np.ndarray  # (columns,) reference mean counts: the token columns, then the item revisits
    axes: np.ndarray  # (k, columns) principal axes of the reference counts
    variances: np.ndarray  # (k,) their variances, floored
    together: np.ndarray  # (tokens, tokens) bool: token pairs some reference session holds both of (diagonal: seen at all)

    @classmethod
    def fit(cls, counts: np.ndarray, floor: float) -> CountDetector:
        """Fit on a `count_matrix` of reference sessions."""
        if len(counts) < 2:
            raise SeqriskError(f"the count detector needs at least 2 reference sessions, got {len(counts)}")
        mean = counts.mean(axis=0)
        pca = PCA(svd_solver="full").fit(counts - mean)
        largest = float(pca.explained_variance_[0]) if len(pca.explained_variance_) else 0.0
        smallest = max(floor * largest, 1e-12)  # all-equal counts: any difference is far away
        together = co_occurrence(counts[:, :-1])  # the token columns, not the revisits
        return cls(mean, pca.components_.copy(), np.maximum(pca.explained_variance_, smallest), together)

    def risk(self, counts: np.ndarray, unseen_pairs: np.ndarray | None = None) -> np.ndarray:
        """Higher means more anomalous: the variance-scaled squared distance from the reference mean.

        `unseen_pairs`: `self.unseen_pairs(counts)` when the caller has it already (scoring keeps it for the reasons).
        """
        centered = counts - self.mean
        inside = centered @ self.axes.T  # (n, k)
        residual = centered - inside @ self.axes  # what the axes cannot express (zero-variance directions)
        unseen = self.unseen_pairs(counts) if unseen_pairs is None else unseen_pairs
        outside = np.einsum("ij,ij->i", residual, residual) + unseen
        return (inside**2 / self.variances).sum(axis=1) + outside / self.variances.min()

    @property
    def token_columns(self) -> int:
        """The token columns of the `count_matrix` it reads (the item revisits follow them)."""
        return len(self.together)

    def unseen_pairs(self, counts: np.ndarray) -> np.ndarray:
        """Per session, the pairs of (distinct) tokens it holds that no reference session held together."""
        novel = (~self.together).astype(np.float32)
        np.fill_diagonal(novel, 0.0)
        present = (counts[:, : self.token_columns] > 0).astype(np.float32)
        return 0.5 * np.einsum("ij,ij->i", present @ novel, present).astype(np.float64)  # each pair counted once

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, mean=self.mean, axes=self.axes, variances=self.variances, together=self.together)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CountDetector:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            return cls(stored["mean"], stored["axes"], stored["variances"], stored["together"])


def co_occurrence(counts: np.ndarray, chunk: int = 16_384) -> np.ndarray:
    """(columns, columns) bool: which pairs of columns are both non-zero in some row (in chunks of rows)."""
    together = np.zeros((counts.shape[1], counts.shape[1]), dtype=np.float32)
    for start in range(0, len(counts), chunk):
        present = (counts[start : start + chunk] > 0).astype(np.float32)
        together += present.T @ present
    return together > 0
