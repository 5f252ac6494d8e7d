"""Which sessions a labels file marks: by session id, or by user and time overlap."""

from datetime import datetime

import pytest
from pyspark.sql import functions as F

from seqrisk.errors import SeqriskError
from seqrisk.evaluation.labels import label_sessions, read_labels
from seqrisk.sessions.sessionize import source_session_of

SESSIONS = [
    ("s1", "u1", datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 10, 20)),
    ("s2", "u1", datetime(2024, 5, 1, 12, 0), datetime(2024, 5, 1, 12, 5)),
    ("s3", "u2", datetime(2024, 5, 1, 9, 0), datetime(2024, 5, 1, 9, 1)),
    ("s4", "u3", datetime(2024, 5, 2, 9, 0), datetime(2024, 5, 2, 9, 1)),
    ("s5", "u4", datetime(2024, 5, 2, 9, 0), datetime(2024, 5, 2, 9, 1)),
]


def labelled(spark, tmp_path, text):
    (tmp_path / "labels.csv").write_text(text)
    sessions = spark.createDataFrame(SESSIONS, "session_id string, user_id string, session_start timestamp, session_end timestamp")
    out = label_sessions(sessions, read_labels(spark, str(tmp_path / "labels.csv")))
    return {r.session_id: r.anomaly_type for r in out.collect()}


def test_spans_mark_the_sessions_of_that_user_they_overlap(spark, tmp_path):
    got = labelled(
        spark,
        tmp_path,
        "user_id,anomaly_type,start,end\n"
        "u1,scraping_bot,2024-05-01T10:19:00Z,2024-05-01T10:40:00Z\n"  # overlaps s1's end only
        "u2,card_testing,,\n"  # no span: every session of u2
        "u3,cart_abuse,2024-05-01T00:00:00Z,2024-05-01T23:00:00Z\n",  # before s4
    )
    assert got == {"s1": "scraping_bot", "s2": None, "s3": "card_testing", "s4": None, "s5": None}


def test_session_ids_mark_sessions_directly_and_a_missing_type_is_anomalous(spark, tmp_path):
    got = labelled(spark, tmp_path, "user_id,session_id\nu4,s5\nu1,s2\n")
    assert got == {"s1": None, "s2": "anomalous", "s3": None, "s4": None, "s5": "anomalous"}


def test_a_labels_file_without_user_id_or_with_unknown_columns_is_refused(spark, tmp_path):
    (tmp_path / "a.csv").write_text("user,anomaly_type\nu1,x\n")
    with pytest.raises(SeqriskError, match="no user_id column"):
        read_labels(spark, str(tmp_path / "a.csv"))
    (tmp_path / "b.csv").write_text("user_id,score\nu1,1\n")
    with pytest.raises(SeqriskError, match=r"unexpected columns \['score'\]"):
        read_labels(spark, str(tmp_path / "b.csv"))


def test_a_session_id_marks_every_piece_of_a_session_longer_than_the_cap(spark, tmp_path):
    (tmp_path / "labels.csv").write_text("user_id,session_id,anomaly_type\nb1,b1,Adduser\n")
    at = datetime(2024, 5, 1, 10, 0)
    ids = ["b1", "b1~0.1", "b1~0.2", "b10~0.1", "b2"]  # b10's piece is not b1's
    sessions = spark.createDataFrame(
        [(i, i.split("~")[0], at, at) for i in ids], "session_id string, user_id string, session_start timestamp, session_end timestamp"
    ).withColumn("source_session_id", source_session_of(F.col("session_id")))
    out = label_sessions(sessions, read_labels(spark, str(tmp_path / "labels.csv")))
    got = {r.session_id: r.anomaly_type for r in out.collect()}
    assert got == {"b1": "Adduser", "b1~0.1": "Adduser", "b1~0.2": "Adduser", "b10~0.1": None, "b2": None}
