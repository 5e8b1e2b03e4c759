#!/usr/bin/env bash
# Installs the Debian packages slt needs to build and test. Idempotent: quiet
# and fast when everything is already there.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev
  # Headers of the Gloo library behind LibTorch's c10d process groups.
  libgloo-dev
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
  libboost-dev libboost-filesystem-dev libboost-program-options-dev
  libyaml-cpp-dev libsentencepiece-dev libspdlog-dev nlohmann-json3-dev libicu-dev
  catch2
  # LibTorch calls the system BLAS; the default reference BLAS is ~12x slower.
  libopenblas0-openmp
  # The programs' allocator: keeps freed large tensors for reuse (docs/PERFORMANCE.md).
  libtcmalloc-minimal4
  # METEOR's synonyms and morphology (WordNet 3.0).
  wordnet-base
)
# Only the test suite needs these: the Python oracle for interop tests, and a
# SLURM controller, node and munge that the cluster tests start in a temporary folder.
TEST_PACKAGES=(python3-torch python3-torchvision python3-numpy slurmctld slurmd slurm-client munge)

want=("${BUILD_PACKAGES[@]}")
if [[ "${1:-}" == "--with-tests" ]]; then
  want+=("${TEST_PACKAGES[@]}")
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "slt: installing missing Debian packages: ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
