"""Model directories under `model.dir`, which may be any URI Spark reaches (or a local folder).

`publish` writes a `ModelDir` into `<root>/.<version>.partial/` and renames it to
`<root>/<version>` (on object stores, which have no atomic rename, a reader may see a directory
that is still being copied: `fetch` then fails its checksums, never loads half a model). `fetch`
reads a directory's files to the driver. A `model.dir` or `score.model` without a scheme is a
local folder (a POSIX mount), not the cluster's default filesystem.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from seqrisk.errors import SeqriskError
from seqrisk.lake import uri_files
from seqrisk.model.model_dir import MANIFEST, ModelDir

LATEST = "latest"


def publish(spark: SparkSession, root: str, directory: ModelDir) -> str:
    """Write the directory under `root` as its version; the URI it was published at."""
    root = uri_files.local_uri(root)
    version = directory.version
    partial, target = uri_files.join(root, f".{version}.partial"), uri_files.join(root, version)
    if uri_files.exists(spark, target):
        raise SeqriskError(f"model version {version} already exists at {target}")
    uri_files.delete(spark, partial)
    for name, data in directory.files.items():
        uri_files.write_bytes(spark, uri_files.join(partial, name), data)
    if not uri_files.rename(spark, partial, target):
        raise SeqriskError(f"could not publish {partial} as {target} (another run published {version} meanwhile?)")
    return target


def fetch(spark: SparkSession, uri: str) -> ModelDir:
    """Every file the directory's manifest lists, read to the driver (verify with `load_model`)."""
    uri = uri_files.local_uri(uri)
    try:
        manifest = uri_files.read_bytes(spark, uri_files.join(uri, MANIFEST))
    except FileNotFoundError:
        raise SeqriskError(f"{uri} is not a seqrisk model directory (no {MANIFEST})") from None
    listed = ModelDir({MANIFEST: manifest}, uri).manifest.get("files", {})
    files = {MANIFEST: manifest}
    for name in listed:
        try:
            files[name] = uri_files.read_bytes(spark, uri_files.join(uri, name))
        except FileNotFoundError:
            raise SeqriskError(f"{uri}: {name} is missing") from None
    return ModelDir(files, uri)


def latest(spark: SparkSession, root: str) -> str:
    """The newest published version under `root` (versions sort by their timestamps)."""
    root = uri_files.local_uri(root)
    versions = [name for name in uri_files.list_names(spark, root) if name.startswith("m")]
    for name in reversed(versions):
        if _published(spark, uri_files.join(root, name)):
            return uri_files.join(root, name)
    raise SeqriskError(f"no model under {root}; run `seqrisk train` first or set model.dir")


def resolve(spark: SparkSession, root: str, model: str) -> str:
    """`score.model`: a model directory, or `latest` (the newest version under `root`)."""
    return latest(spark, root) if model == LATEST else uri_files.local_uri(model)


def find_version(spark: SparkSession, roots: list[str], version: str) -> ModelDir | None:
    """The directory of `version` under the first of `roots` that holds it, or None."""
    for root in roots:
        uri = uri_files.join(uri_files.local_uri(root), version)
        if _published(spark, uri):
            return fetch(spark, uri)
    return None


def _published(spark: SparkSession, uri: str) -> bool:
    """A model directory is published once its manifest is there (it is written with the other files, before the rename)."""
    return uri_files.exists(spark, uri_files.join(uri, MANIFEST))
