"""The vocabulary in the lake: saved beside the windows it cut, and proven to belong to them.

`sessionize` writes `tables.root/vocabulary.json` (through `uri_files`, so the root may be any
URI) and records the vocabulary's SHA-256 in every commit of the windows table. `train` and a
ranged `sessionize` accept the saved vocabulary only when its SHA-256 is the one of the windows'
latest commit: a lost or replaced vocabulary would shift token ids under the windows (and under a
model trained on them), so it stops the job instead.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from seqrisk.errors import SeqriskError
from seqrisk.lake import uri_files
from seqrisk.lake.lake import Lake
from seqrisk.sessions.vocabulary import Vocabulary

SHA_KEY = "vocabulary_sha256"  # the windows commits' metadata key


def save(spark: SparkSession, uri: str, vocabulary: Vocabulary) -> None:
    uri_files.write_text(spark, uri, vocabulary.to_json())


def load(spark: SparkSession, uri: str) -> Vocabulary:
    """The vocabulary saved at `uri`; FileNotFoundError when there is none."""
    text = uri_files.read_text(spark, uri)
    try:
        return Vocabulary.from_json(text)
    except (ValueError, KeyError) as err:  # another format, or not a vocabulary at all
        raise SeqriskError(f"{uri}: {err}") from None


def windows_vocabulary(lake: Lake) -> Vocabulary:
    """The lake's saved vocabulary, checked against the one its windows table was cut with."""
    windows_path, uri = lake.path("windows"), lake.path("vocabulary")
    rerun = "re-run `seqrisk sessionize` over every date (without --from/--to), then train again"
    try:
        vocabulary = load(lake.spark, uri)
    except FileNotFoundError:
        raise SeqriskError(f"no vocabulary at {uri}, but the windows at {windows_path} were cut with one; {rerun}") from None
    cut_with = lake.tables.commit_metadata(windows_path).get(SHA_KEY)
    if cut_with != vocabulary.sha256:
        recorded = f"sha256 {cut_with[:12]}" if cut_with else "none recorded"
        raise SeqriskError(
            f"the vocabulary at {uri} (sha256 {vocabulary.sha256[:12]}) is not the one the windows at "
            f"{windows_path} were cut with ({recorded}); {rerun}"
        )
    return vocabulary
