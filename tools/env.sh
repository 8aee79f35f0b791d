#!/usr/bin/env bash
# Creates (or reuses) .venv and runs a command inside it with the package's ROS environment.
#
# Usage: tools/env.sh COMMAND [ARGS...]
# The venv is rebuilt only when a pinned requirements file changes; the package itself is
# reinstalled (without dependencies) when its metadata changes; launch/ and config/ are linked.
# With a ROS install sourced (ROS_DISTRO set) the venv sees that ROS's Python packages and the
# ROS wheels are not installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3.11}"
if [ -n "${ROS_DISTRO:-}" ]; then
  python="${PYTHON:-python3}"
fi

log() { echo "[env] $*" >&2; }

req_files=("$root/requirements/base.txt")
venv_flags=()
if [ -n "${ROS_DISTRO:-}" ]; then
  venv_flags+=(--system-site-packages)
else
  req_files+=("$root/requirements/ros.txt")
fi

req_hash="$(cat "${req_files[@]}" | sha256sum | cut -d' ' -f1)-${ROS_DISTRO:-wheels}"
pkg_hash="$(cd "$root" && cat setup.py setup.cfg package.xml | sha256sum | cut -d' ' -f1)"

if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$req_hash" ]; then
  log "creating $venv with $python (pinned requirements changed or venv missing)"
  rm -rf "$venv"
  "$python" -m venv "${venv_flags[@]}" "$venv"
  for f in "${req_files[@]}"; do
    log "installing $(basename "$f")"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$f" \
      2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  done
  echo "$req_hash" > "$venv/.requirements.sha256"
  rm -f "$venv/.package.sha256"
fi

if [ "$(cat "$venv/.package.sha256" 2>/dev/null)" != "$pkg_hash" ]; then
  log "installing gps_denied_inference into $venv"
  (cd "$root" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-build-isolation -e .)
  echo "$pkg_hash" > "$venv/.package.sha256"
fi

# Like `colcon build --symlink-install`: the share directory links to the sources, so edits to
# launch/ and config/ are live. (An editable pip install does not install data_files.)
share="$venv/share/gps_denied_inference"
index="$venv/share/ament_index/resource_index/packages"
mkdir -p "$share" "$index"
ln -sfn "$root/package.xml" "$share/package.xml"
ln -sfn "$root/launch" "$share/launch"
ln -sfn "$root/config" "$share/config"
ln -sfn "$root/resource/gps_denied_inference" "$index/gps_denied_inference"

# ament_index_python finds the package's share directory (package.xml, launch/, config/) here.
export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# Camera frames across processes need the large-data transport on both ends (README,
# "Transport"); the demo, the tests and the benchmark run with the profile the README prescribes.
profile="$root/config/fastdds_large_data.xml"
# Fast DDS 2.x (Humble, Iron, Jazzy) reads FASTRTPS_..., 3.x (Kilted wheels) FASTDDS_....
case "${ROS_DISTRO:-kilted}" in
  humble|iron|jazzy)
    export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$profile}" ;;
  *)
    export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$profile}" ;;
esac
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
exec "$@"
