# Sourced by scripts/test.sh: the real clients the end-to-end tests drive (curl, openssl
# s_client, h2load), installed from Debian's packages when missing. Without one of them the run
# fails here, before any test, rather than in the middle of the suite.

clients_die() { echo "clients.sh: $*" >&2; exit 1; }

clients_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    clients_die "need root (or sudo) to run: $*"
  fi
}

clients_missing=()
command -v curl >/dev/null || clients_missing+=(curl)
command -v openssl >/dev/null || clients_missing+=(openssl)
command -v h2load >/dev/null || clients_missing+=(nghttp2-client)

if [ "${#clients_missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || clients_die "missing ${clients_missing[*]} and no apt-get to install them"
  echo "installing ${clients_missing[*]} from Debian's packages" >&2
  clients_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  clients_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${clients_missing[@]}" >/dev/null
fi

for tool in curl openssl h2load; do
  command -v "$tool" >/dev/null || clients_die "$tool is still missing after the install"
done
