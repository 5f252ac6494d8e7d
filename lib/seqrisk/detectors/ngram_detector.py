"""The n-gram detector: the share of a session's length-n runs of tokens that the reference population does not hold.

This is STIDE (Forrest, Hofmeyr, Somayaji, Longstaff 1996) with the reference taken from the
training dates' sessions: a run of `length` consecutive tokens (the model's vocabulary, as the
count detector encodes them) is known when at least `min_sessions` reference sessions hold it,
and a session's risk is the share of its runs that are not known. A session shorter than
`length` is one run of its own length. (Counting the share with one known run more, so that a
long session of unseen runs ranks above a short one, was tried: it put a clickstream's long,
ordinary, unique sessions at the top and cost the demo a tenth of its recall at 1 %;
docs/detectors.md, "The n-gram detector".) It sees what a next-event model trained briefly can miss:
a trace whose every step is plausible on its own but whose runs of steps never occur in normal
sessions (docs/detectors.md, "Where the order signal goes").

Fitted at scale on Spark: executors hash each session's distinct runs (`run_hashes`, 64 bits,
so collisions are negligible), one shuffle counts the sessions per hash, and only the hashes
held by `min_sessions` or more, at most `max_stored` of the most widely held, come to the driver.
They are stored sorted with their session counts (`ngram_detector.npz`, no pickle), so scoring
is a binary search per run: linear in events.

The reference is unlabeled and may hold anomalies, so a known run must be held by more than one
session (`min_sessions`, 2 by default): a session's own unique runs never make it look normal.
The calibration is leave-one-out: a reference session's runs are judged by the sessions other
than itself (`risk(..., in_reference=True)`), as a new session's will be judged by all of them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import cast

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seqrisk.errors import SeqriskError
from seqrisk.sessions.vocabulary import Vocabulary, session_tokens

log = logging.getLogger("seqrisk")

_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constants (splitmix64's)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def run_hashes(token_lists: list[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
    """(every session's run hashes, concatenated in session order; each session's number of runs), vectorized over sessions.

    A run is `length` consecutive tokens, hashed to 64 bits (as int64); a session shorter than
    `length` is one run of its own length.
    """
    sizes = np.array([len(t) for t in token_lists], dtype=np.int64)
    runs = np.where(sizes >= length, sizes - length + 1, np.minimum(sizes, 1))
    out = np.empty(int(runs.sum()), dtype=np.int64)
    if not len(out):
        return out, runs
    tokens = np.concatenate([np.asarray(t, dtype=np.uint64) for t in token_lists])
    first_token = np.cumsum(sizes) - sizes
    first_run = np.cumsum(runs) - runs
    long = sizes >= length
    if long.any():
        counts = runs[long]
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)  # 0, 1, ... per session
        starts = np.repeat(first_token[long], counts) + within
        out[np.repeat(first_run[long], counts) + within] = _mix(sliding_window_view(tokens, length)[starts], length)
    for size in np.unique(sizes[(sizes > 0) & ~long]):  # a shorter session: one run of its own length
        chosen = sizes == size
        rows = tokens[first_token[chosen][:, None] + np.arange(size)]
        out[first_run[chosen]] = _mix(rows, int(size))
    return out, runs


def _mix(runs: np.ndarray, width: int) -> np.ndarray:
    """One 64-bit hash (as int64) per row of `runs` ((k, width) uint64 tokens): multiply-xorshift, splitmix64's finalizer."""
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 on purpose
        h = np.full(len(runs), np.uint64(width), dtype=np.uint64)
        for column in range(width):
            h = (h ^ runs[:, column]) * _MULTIPLIER
        h = (h ^ (h >> np.uint64(30))) * _MIX_1
        h = (h ^ (h >> np.uint64(27))) * _MIX_2
        h ^= h >> np.uint64(31)
    return h.view(np.int64)


@dataclass
class NgramDetector:
    length: int  # tokens per run
    min_sessions: int  # a run is known when at least this many reference sessions hold it
    hashes: np.ndarray  # (m,) int64, sorted: the runs held by min_sessions or more reference sessions
    sessions: np.ndarray  # (m,) int64: how many reference sessions hold each

    @classmethod
    def fit(cls, sessions: DataFrame, vocabulary: Vocabulary, length: int, min_sessions: int, max_stored: int) -> NgramDetector:
        """Count, for every run of `length` tokens, the reference sessions holding it (a Spark DataFrame of sessions).

        Shuffle: by run hash. Driver: at most `max_stored` hashes and counts.
        """
        held = (
            sessions.select("event_types", "categories", "prices")
            .mapInPandas(partial(_distinct_runs, vocabulary=vocabulary, length=length), "run long")
            .groupBy("run")
            .agg(F.count("*").alias("sessions"))
            .filter(F.col("sessions") >= min_sessions)
        )
        kept = cast(pd.DataFrame, held.orderBy(F.desc("sessions"), "run").limit(max_stored + 1).toPandas())
        if len(kept) > max_stored:
            kept = kept.iloc[:max_stored]
            log.warning(
                "train: more than %d runs of %d tokens are held by %d or more sessions; the %d most widely held are kept,"
                " rarer ones count as unseen (train.ngram_max_stored)",
                max_stored,
                length,
                min_sessions,
                max_stored,
            )
        order = np.argsort(kept["run"].to_numpy(), kind="stable")
        log.info("train: n-gram detector: %d runs of %d tokens held by %d or more sessions", len(kept), length, min_sessions)
        return cls(length, min_sessions, kept["run"].to_numpy(np.int64)[order], kept["sessions"].to_numpy(np.int64)[order])

    def risk(self, token_lists: Iterable[np.ndarray], in_reference: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(share of runs not known, runs not known) per session.

        `in_reference`: the sessions are among the reference's, each judged by the others.
        """
        hashes, runs = run_hashes(list(token_lists), self.length)
        at = np.minimum(np.searchsorted(self.hashes, hashes), max(len(self.hashes) - 1, 0))
        held = np.where(self.hashes[at] == hashes, self.sessions[at], 0) if len(self.hashes) else np.zeros(len(hashes), dtype=np.int64)
        if in_reference:
            held = held - (held > 0)  # each of its runs is held by itself too
        session = np.repeat(np.arange(len(runs)), runs)
        unseen = np.bincount(session, weights=held < self.min_sessions, minlength=len(runs))
        return unseen / np.maximum(runs, 1), unseen

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, length=self.length, min_sessions=self.min_sessions, hashes=self.hashes, sessions=self.sessions)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> NgramDetector:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            detector = cls(int(stored["length"]), int(stored["min_sessions"]), stored["hashes"], stored["sessions"])
        if np.any(np.diff(detector.hashes) <= 0):
            raise SeqriskError("ngram_detector.npz: the hashes are not sorted and distinct; the model directory is corrupt")
        return detector


def _distinct_runs(batches: Iterator[pd.DataFrame], vocabulary: Vocabulary, length: int) -> Iterator[pd.DataFrame]:
    """`mapInPandas` body: each session's distinct run hashes, one row each."""
    for batch in batches:
        hashes, runs = run_hashes(list(session_tokens(batch, vocabulary)), length)
        held = pd.DataFrame({"session": np.repeat(np.arange(len(runs)), runs), "run": hashes}).drop_duplicates()
        yield held[["run"]]
