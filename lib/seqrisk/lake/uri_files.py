"""Files by URI (the lake's vocabulary, model directories), through Hadoop's FileSystem in Spark's JVM.

It is the layer Spark reads and writes the tables with, so a root such as `hdfs:///seqrisk/lake`,
`s3a://bucket/lake`, `abfss://...`, `dbfs:/...`, `/Volumes/...` or `file:///data/lake` means the
same place for a table and for a file beside it, on the driver and on every executor. A path
without a scheme resolves as Spark resolves it (the cluster's default filesystem; locally, the
working folder), except where `local_uri` makes it a local one first. `pathlib` never touches
these paths: it would turn `hdfs:///x` into the local folder `hdfs:/x` on the driver.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from pyspark.sql import SparkSession

from seqrisk.errors import SeqriskError


def join(root: str, *names: str) -> str:
    """`root/name/...` for a URI or a path (no normalisation that would drop a scheme's slashes)."""
    return "/".join([root.rstrip("/"), *(n.strip("/") for n in names)])


def parent(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[0]


def local_uri(path: str) -> str:
    """A URI as it is; a path without a scheme as a `file:` URI of the local disk (a POSIX mount)."""
    if urllib.parse.urlparse(path).scheme:
        return path
    return "file://" + os.path.abspath(path)  # as Hadoop writes it: unescaped


def jvm(spark: SparkSession) -> Any:
    """Spark's JVM gateway (py4j): Hadoop's and Delta's classes by name. Only `seqrisk.lake` reaches into it."""
    gateway = spark._jvm
    if gateway is None:
        raise SeqriskError("this Spark session has no JVM gateway (Spark Connect?); seqrisk needs a classic Spark session")
    return gateway


def _filesystem(spark: SparkSession, uri: str):
    """Hadoop's FileSystem for `uri`, and the Path.

    On a local disk, the raw filesystem: Hadoop's checksummed one keeps a `.crc` file beside each
    file it writes and refuses to read a file that anything else has rewritten since.
    """
    gateway = jvm(spark)
    path = gateway.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if gateway.java.lang.Class.forName("org.apache.hadoop.fs.ChecksumFileSystem").isInstance(fs):
        fs = fs.getRawFileSystem()
    return fs, path


def _path(spark: SparkSession, uri: str):
    return jvm(spark).org.apache.hadoop.fs.Path(uri)


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _filesystem(spark, uri)
    return bool(fs.exists(path))


def read_bytes(spark: SparkSession, uri: str) -> bytes:
    """The file's bytes; FileNotFoundError when there is none."""
    fs, path = _filesystem(spark, uri)
    if not fs.exists(path):
        raise FileNotFoundError(uri)
    stream = fs.open(path)
    try:
        return bytes(jvm(spark).org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def read_head(spark: SparkSession, uri: str, limit: int) -> bytes:
    """The file's first `limit` bytes (all of a shorter file), decompressed as Spark's text source reads it."""
    fs, path = _filesystem(spark, uri)
    gateway = jvm(spark)
    stream = fs.open(path)
    if (codec := _codec(spark, path)) is not None:
        stream = codec.createInputStream(stream)
    stream = gateway.org.apache.commons.io.input.BoundedInputStream(stream, limit)
    try:
        return bytes(gateway.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def is_compressed(spark: SparkSession, uri: str) -> bool:
    """Whether Hadoop (and so Spark's text source) decompresses the file, by its name (`.gz`, `.bz2`, ...)."""
    return _codec(spark, _path(spark, uri)) is not None


def _codec(spark: SparkSession, path: Any) -> Any:
    factory = jvm(spark).org.apache.hadoop.io.compress.CompressionCodecFactory(spark.sparkContext._jsc.hadoopConfiguration())
    return factory.getCodec(path)


def read_text(spark: SparkSession, uri: str) -> str:
    return read_bytes(spark, uri).decode("utf-8")


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Write a new file (or replace one) in one piece; see `write_text` for a file readers watch."""
    fs, path = _filesystem(spark, uri)
    out = fs.create(path, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write `uri` whole: into `<uri>.partial` first, then renamed over the old file.

    On HDFS and local disks a reader sees the old file or the new one; object stores have no
    atomic rename, and there the old file is deleted just before the rename.
    """
    write_bytes(spark, uri + ".partial", text.encode("utf-8"))
    fs, path = _filesystem(spark, uri)
    partial = _path(spark, uri + ".partial")
    if not fs.rename(partial, path):  # HDFS and object stores refuse to rename over a file
        fs.delete(path, False)
        if not fs.rename(partial, path):
            raise OSError(f"could not move {uri}.partial to {uri}")


def list_names(spark: SparkSession, uri: str) -> list[str]:
    """Names of the entries in a folder; none when there is no such folder."""
    fs, path = _filesystem(spark, uri)
    if not fs.exists(path):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(path))


def rename(spark: SparkSession, source: str, target: str) -> bool:
    """Move a file or folder to a name not yet taken; False when `target` exists."""
    fs, source_path = _filesystem(spark, source)
    target_path = _path(spark, target)
    if fs.exists(target_path):
        return False
    return bool(fs.rename(source_path, target_path))


def delete(spark: SparkSession, uri: str) -> None:
    """Remove a file or a folder with everything in it (nothing when there is none)."""
    fs, path = _filesystem(spark, uri)
    fs.delete(path, True)


def glob(spark: SparkSession, pattern: str) -> list[tuple[str, bool]]:
    """(URI, is a folder) of every entry a path or glob matches, as Hadoop spells the URIs."""
    fs, path = _filesystem(spark, pattern)
    return [(str(status.getPath()), bool(status.isDirectory())) for status in fs.globStatus(path) or []]


def list_files(spark: SparkSession, uri: str) -> list[str]:
    """URIs of every file below a folder, recursively (one listing call, streamed from Hadoop)."""
    fs, path = _filesystem(spark, uri)
    listing = fs.listFiles(path, True)
    found = []
    while listing.hasNext():
        found.append(str(listing.next().getPath()))
    return found
