# Sourced by the scripts that install what they need from Debian's packages: run a command as root
# (directly, or through sudo), and install packages in one step.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2
    return 1
  fi
}

# apt_install PACKAGE...: refreshes the package lists, then installs quietly.
apt_install() {
  command -v apt-get >/dev/null || { echo "no apt-get to install: $*" >&2; return 1; }
  echo "installing $* from Debian's packages" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
