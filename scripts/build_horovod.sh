#!/usr/bin/env bash
# Build a Horovod wheel that works with torch 2.x, and cache it.
#
# Horovod 0.28.1 (its last release) asks CMake for C++14, but torch 2.1+ headers need C++17.
# We patch both CMakeLists.txt files of the PyPI source release to C++17 and build with Gloo and
# PyTorch only (no TensorFlow, MXNet or MPI), as a Release build: Horovod's own default is
# RelWithDebInfo, whose debug info makes every translation unit of torch's headers slower to
# compile and the wheel several times larger. Compiles run on every core (MAKEFLAGS). On a GPU cluster set HOROVOD_GPU_OPERATIONS=NCCL
# (and CUDA_HOME) before running this script to build the NCCL variant.
#
# usage: scripts/build_horovod.sh PYTHON VERSION WHEEL_DIR
# Prints the path of the wheel. Reuses a wheel already in WHEEL_DIR.
set -euo pipefail
python=$1 version=$2 wheel_dir=$3
mkdir -p "$wheel_dir"

cached=$(ls "$wheel_dir"/horovod-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$cached" ]; then
  echo "$cached"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "building horovod $version (takes 2 to 4 minutes on 2 cores; cached in $wheel_dir afterwards)" >&2
"$python" -m pip download --quiet --no-deps --no-binary=:all: "horovod==$version" -d "$work" >&2
tar -xzf "$work/horovod-$version.tar.gz" -C "$work"
src="$work/horovod-$version"
sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' \
  "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"
grep -q 'CMAKE_CXX_STANDARD 17' "$src/horovod/torch/CMakeLists.txt" || {
  echo "build_horovod: the C++17 patch did not apply to horovod/torch/CMakeLists.txt" >&2; exit 1; }
sed -i "s/else 'RelWithDebInfo'/else 'Release'/" "$src/setup.py"
grep -q "else 'Release'" "$src/setup.py" || {
  echo "build_horovod: the Release-build patch did not apply to setup.py" >&2; exit 1; }

cmake_major=$(cmake --version | sed -n 's/^cmake version \([0-9]*\).*/\1/p')
if [ "${cmake_major:-3}" -ge 4 ]; then export CMAKE_POLICY_VERSION_MINIMUM=3.5; fi

HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 \
HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 HOROVOD_WITHOUT_MPI=1 \
MAKEFLAGS="-j$(nproc)" \
  "$python" -m pip wheel --quiet --no-deps --no-build-isolation "$src" -w "$work/dist" >&2
cp "$work"/dist/horovod-*.whl "$wheel_dir/"
ls "$wheel_dir"/horovod-"$version"-*.whl | head -n 1
