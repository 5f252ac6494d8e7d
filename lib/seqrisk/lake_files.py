"""Files that live in the lake beside its tables (today the vocabulary), by URI.

They go through Hadoop's FileSystem in Spark's JVM, the same layer Spark reads and writes the
tables with, so a root such as `hdfs:///seqrisk/lake`, `s3a://bucket/lake`, `abfss://...`,
`dbfs:/...` or `file:///data/lake` means the same place for a table and for a file beside it, and
a path without a scheme resolves as Spark resolves it (the cluster's default filesystem; locally,
the working folder). `pathlib` never touches a lake path: it would turn `hdfs:///x` into the local
folder `hdfs:/x` on the driver.
"""
from __future__ import annotations

from pyspark.sql import SparkSession


def join(root: str, *names: str) -> str:
    """`root/name/...` for a URI or a path (no normalisation that would drop a scheme's slashes)."""
    return "/".join([root.rstrip("/"), *(n.strip("/") for n in names)])


def _filesystem(spark: SparkSession, uri: str):
    """Hadoop's FileSystem for `uri`, and the Path.

    On a local disk, the raw filesystem: Hadoop's checksummed one keeps a `.crc` file beside each
    file it writes and refuses to read a file that anything else has rewritten since.
    """
    jvm = spark._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if jvm.java.lang.Class.forName("org.apache.hadoop.fs.ChecksumFileSystem").isInstance(fs):
        fs = fs.getRawFileSystem()
    return fs, path


def read_text(spark: SparkSession, uri: str) -> str:
    """The file's text (UTF-8); FileNotFoundError when there is none."""
    fs, path = _filesystem(spark, uri)
    if not fs.exists(path):
        raise FileNotFoundError(uri)
    stream = fs.open(path)
    try:
        data = spark._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)  # type: ignore[attr-defined]
    finally:
        stream.close()
    return bytes(data).decode("utf-8")


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write `uri` whole: into `<uri>.partial` first, then renamed over the old file.

    On HDFS and local disks a reader sees the old file or the new one; object stores have no
    atomic rename, and there the old file is deleted just before the rename.
    """
    fs, path = _filesystem(spark, uri)
    partial = spark._jvm.org.apache.hadoop.fs.Path(uri + ".partial")  # type: ignore[attr-defined]
    out = fs.create(partial, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()
    if not fs.rename(partial, path):  # HDFS and object stores refuse to rename over a file
        fs.delete(path, False)
        if not fs.rename(partial, path):
            raise OSError(f"could not move {uri}.partial to {uri}")
