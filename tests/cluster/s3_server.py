"""Moto's S3 server for the cluster tests, with one fault it can be switched into: slow Parquet writes.

usage: python s3_server.py PORT FOLDER. While the file FOLDER/slow-parquet-puts exists, each PUT of a
`.parquet` object waits SLOW_PUT_S before it is stored, so that a test can act while a write's Spark
job is still writing files (the object store of a busy cluster, without racing a fast one).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

SLOW_PUT_S = 2.0
SWITCH = "slow-parquet-puts"


def main(port: int, folder: Path) -> None:
    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if environ["REQUEST_METHOD"] == "PUT" and environ["PATH_INFO"].endswith(".parquet") and (folder / SWITCH).exists():
            time.sleep(SLOW_PUT_S)
        return moto(environ, start_response)

    make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler).serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
