#!/usr/bin/env bash
# Check what `make setup` cannot install by itself: Python 3.11 and Java 17.
set -u
python=${1:-python3.11}
ok=1
if ! command -v "$python" >/dev/null 2>&1; then
  echo "setup: $python not found. seqrisk needs Python 3.11 (the Databricks 15.4 LTS ML runtime's);"
  echo "       install it (pyenv install 3.11, or your OS package) or run: make setup PYTHON=/path/to/python3.11"
  ok=0
elif ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup: $python is Python $("$python" -c 'import platform; print(platform.python_version())'); seqrisk needs 3.11"
  ok=0
fi
if ! command -v java >/dev/null 2>&1; then
  echo "setup: java not found. Spark 3.5 needs Java 17: apt-get install openjdk-17-jdk-headless (or set JAVA_HOME)"
  ok=0
else
  version=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  if [ "$version" != "17" ]; then
    echo "setup: java is version ${version:-unknown}; Spark 3.5 here is pinned to Java 17 (set JAVA_HOME to a JDK 17)"
    ok=0
  fi
fi
[ "$ok" = 1 ] || exit 1
