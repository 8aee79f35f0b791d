#!/usr/bin/env bash
# Creates (or reuses) a venv and runs a command inside it with the package's ROS environment.
#
# Usage: tools/env.sh COMMAND [ARGS...]
# The venv is rebuilt only when a pinned requirements file changes; the package itself is
# reinstalled (without dependencies) when its metadata changes; launch/ and config/ are linked.
# With a ROS install sourced (ROS_DISTRO set) the venv sees that ROS's Python packages and the
# ROS wheels are not installed.
#
# Two stacks:
#   default  .venv, Python 3.11, requirements/base.txt (+ ros.txt: the Kilted wheels)
#   humble   .venv-humble, Python 3.10, requirements/humble.txt (numpy 1.x), plus
#            humble-wheels.txt (cp310 Jazzy wheels, OpenCV 4.5.4) where no ROS is sourced.
#            Chosen by GDI_STACK=humble, or by a sourced ROS_DISTRO=humble (the drone).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { echo "[env] $*" >&2; }

# The first Python 3.10 that runs: on PATH (a pyenv shim may not run), else pyenv's newest.
find_python310() {
  local candidate
  local pyenv_root
  pyenv_root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for candidate in "$(command -v python3.10 || true)" \
      $(ls -d "$pyenv_root"/versions/3.10*/bin/python3.10 2>/dev/null | sort -V -r); do
    if [ -n "$candidate" ] \
        && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

stack="${GDI_STACK:-}"
if [ -z "$stack" ] && [ "${ROS_DISTRO:-}" = humble ]; then
  stack=humble
fi
case "$stack" in
  humble)
    venv="$root/.venv-humble"
    req_files=("$root/requirements/humble.txt")
    wheels_distro=jazzy
    if [ -n "${ROS_DISTRO:-}" ]; then
      python="${PYTHON:-python3}"
    else
      req_files+=("$root/requirements/humble-wheels.txt")
      python="${PYTHON:-$(find_python310 || true)}"
      if [ -z "$python" ]; then
        log "no Python 3.10 found (Humble's Python): install one with 'pyenv install 3.10'" \
            "or 'sudo apt install python3.10 python3.10-venv', or name it with" \
            "PYTHON=/path/to/python3.10"
        exit 2
      fi
    fi ;;
  '')
    venv="$root/.venv"
    req_files=("$root/requirements/base.txt")
    wheels_distro=kilted
    if [ -n "${ROS_DISTRO:-}" ]; then
      python="${PYTHON:-python3}"
    else
      req_files+=("$root/requirements/ros.txt")
      python="${PYTHON:-python3.11}"
    fi ;;
  *)
    log "GDI_STACK=$stack is not a stack: use humble, or leave it unset"
    exit 2 ;;
esac
venv_flags=()
if [ -n "${ROS_DISTRO:-}" ]; then
  venv_flags+=(--system-site-packages)
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
# Fast DDS 2.x (Humble, Iron, Jazzy and its wheels) reads FASTRTPS_..., 3.x (Kilted) FASTDDS_....
case "${ROS_DISTRO:-$wheels_distro}" in
  humble|iron|jazzy)
    export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$profile}" ;;
  *)
    export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$profile}" ;;
esac
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
exec "$@"
