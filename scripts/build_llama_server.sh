#!/usr/bin/env bash
# Build llama.cpp's llama-server (CPU only, Release) from the llama.cpp sources vendored in the
# llama-cpp-python source distribution on PyPI: PyPI is reachable where GitHub may not be.
#
#   scripts/build_llama_server.sh [CACHE_DIR]     (default ~/.cache/reaper-lsp/llama.cpp)
#
# Progress goes to stderr; the last line on stdout is the path of the llama-server binary.
# A second run with the binary already built only prints its path. Takes ~25 min on 2 cores.
# Environment: PYTHON (has pip; default python3), JOBS (default 2),
# LLAMA_CPP_PYTHON_VERSION (pin the sdist, e.g. 0.3.36; default the newest).
set -euo pipefail

cache="${1:-${HOME}/.cache/reaper-lsp/llama.cpp}"
python="${PYTHON:-python3}"
jobs="${JOBS:-2}"
binary="${cache}/build/bin/llama-server"

say() { printf '%s\n' "$*" >&2; }

if [[ -x "${binary}" ]]; then
    say "already built"
    printf '%s\n' "${binary}"
    exit 0
fi

mkdir -p "${cache}/sdist"
if [[ ! -f "${cache}/src/CMakeLists.txt" ]]; then
    spec="llama-cpp-python${LLAMA_CPP_PYTHON_VERSION:+==${LLAMA_CPP_PYTHON_VERSION}}"
    say "downloading the ${spec} source distribution from PyPI"
    "${python}" -m pip download --quiet --no-binary :all: --no-deps "${spec}" -d "${cache}/sdist" >&2
    sdist="$(ls -t "${cache}"/sdist/llama_cpp_python-*.tar.gz | head -n 1)"
    top="$(basename "${sdist}" .tar.gz)"
    say "extracting ${top}/vendor/llama.cpp"
    rm -rf "${cache}/src" "${cache}/extract"
    mkdir -p "${cache}/extract"
    tar -xzf "${sdist}" -C "${cache}/extract" "${top}/vendor/llama.cpp"
    mv "${cache}/extract/${top}/vendor/llama.cpp" "${cache}/src"
    rm -rf "${cache}/extract"
    printf '%s\n' "${top}" > "${cache}/src/.from-sdist"
fi

# No web UI (it would be fetched from Hugging Face), no HTTPS, one static binary.
say "configuring"
cmake -S "${cache}/src" -B "${cache}/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF \
    >&2

say "building llama-server with ${jobs} jobs"
nice -n 10 cmake --build "${cache}/build" --config Release --target llama-server -j "${jobs}" >&2

test -x "${binary}"
printf '%s\n' "${binary}"
