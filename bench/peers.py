"""Peers that `bench/quality.py` runs beside seqrisk's detectors, written from their papers' descriptions.

Each takes the reference sessions' event sequences (what it learns normal from: the training lake of a
held-out set, the scored lake itself otherwise) and the scored sessions' sequences, and returns one
score per scored session (higher: more anomalous):

- STIDE-n (Forrest, Hofmeyr, Somayaji, Longstaff 1996): the share of a session's length-n runs of
  events that no reference session holds (a session shorter than n: whether its whole run is held).
- Nearest neighbour: the cosine distance from a session's tf-idf event counts to the closest
  reference session's (k = 1; a session that is itself in the reference is compared with the others).
- DeepLog (Du, Li, Zheng, Srikumar 2017): an LSTM (2 layers of 64) reads the previous `h` = 10 events
  and ranks the next; an event outside its top `g` = 9 predictions is an anomaly, and the session's
  score is the share of such events (the paper flags a session with any; the share ranks them); a
  session of one event scores 0.

Everything runs on the driver in memory: these are benchmarks for development-sized data sets.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import NearestNeighbors

Sequences = list[list[str]]


def stide(reference: Sequences, scored: Sequences, n: int) -> np.ndarray:
    """The share of each scored session's length-n event runs held by no reference session (a shorter
    session is one run of its own length, looked up among the reference's runs of that length)."""
    known = {gram for events in reference for m in range(1, n + 1) for gram in _ngrams(events, m)}
    out = np.zeros(len(scored))
    for row, events in enumerate(scored):
        grams = _ngrams(events, n)
        out[row] = sum(g not in known for g in grams) / len(grams)
    return out


def nearest_neighbour(reference: Sequences, scored: Sequences, same: bool) -> np.ndarray:
    """Cosine distance of tf-idf event counts to the nearest reference session (`same`: scored is reference)."""
    vectorizer = TfidfVectorizer(analyzer=lambda events: events, lowercase=False)
    fitted = vectorizer.fit_transform(reference)
    index = NearestNeighbors(n_neighbors=2 if same else 1, metric="cosine").fit(fitted)
    distances, _ = index.kneighbors(vectorizer.transform(scored))
    return distances[:, -1]


def deeplog(
    reference: Sequences, scored: Sequences, *, h: int = 10, g: int = 9, epochs: int = 5, max_samples: int = 300_000, seed: int = 7
) -> np.ndarray:
    """The share of each scored session's events outside the LSTM's top-g predictions from the `h` before."""
    torch.manual_seed(seed)
    vocabulary = {e: i + 2 for i, e in enumerate(sorted({e for events in reference for e in events}))}  # 0 pads, 1 is unseen
    model = _NextEvent(len(vocabulary) + 2)
    history, following = _samples([_ids(events, vocabulary) for events in reference], h)
    chosen = np.random.default_rng(seed).permutation(len(following))[:max_samples]
    history, following = torch.from_numpy(history[chosen]), torch.from_numpy(following[chosen])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(following)).split(512):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(history[batch]), following[batch]).backward()
            optimizer.step()
    model.eval()
    out = np.zeros(len(scored))
    with torch.no_grad():
        for row, events in enumerate(scored):
            past, nxt = _samples([_ids(events, vocabulary)], h)
            if len(nxt):
                top = model(torch.from_numpy(past)).topk(min(g, len(vocabulary) + 2), dim=-1).indices
                out[row] = float((top != torch.from_numpy(nxt)[:, None]).all(dim=-1).float().mean())
    return out


class _NextEvent(torch.nn.Module):
    def __init__(self, n_tokens: int, width: int = 64, layers: int = 2):
        super().__init__()
        self.embed = torch.nn.Embedding(n_tokens, width, padding_idx=0)
        self.lstm = torch.nn.LSTM(width, width, num_layers=layers, batch_first=True)
        self.out = torch.nn.Linear(width, n_tokens)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.embed(history))
        return self.out(hidden[:, -1])


def _ids(events: list[str], vocabulary: dict[str, int]) -> np.ndarray:
    return np.array([vocabulary.get(e, 1) for e in events], dtype=np.int64)


def _samples(sessions: list[np.ndarray], h: int) -> tuple[np.ndarray, np.ndarray]:
    """(the h events before each event, left-padded; the event) for every event after a session's first."""
    histories, following = [], []
    for ids in sessions:
        padded = np.concatenate([np.zeros(h, dtype=np.int64), ids])
        for i in range(1, len(ids)):
            histories.append(padded[i : i + h])
            following.append(ids[i])
    if not following:  # sessions of one event: nothing to predict
        return np.zeros((0, h), dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.stack(histories), np.array(following, dtype=np.int64)


def _ngrams(events: list[str], n: int) -> list[tuple]:
    """A session's length-n runs; a shorter session is one run of itself."""
    return [tuple(events[i : i + n]) for i in range(len(events) - n + 1)] or [tuple(events)]
