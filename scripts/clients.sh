# Sourced by scripts/test.sh: the real clients the end-to-end tests drive (curl, openssl
# s_client, h2load), installed from Debian's packages when missing. Without one of them the run
# fails here, before any test, rather than in the middle of the suite.

source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

clients_missing=()
command -v curl >/dev/null || clients_missing+=(curl)
command -v openssl >/dev/null || clients_missing+=(openssl)
command -v h2load >/dev/null || clients_missing+=(nghttp2-client)
if [ "${#clients_missing[@]}" -gt 0 ]; then
  apt_install "${clients_missing[@]}" || { echo "clients.sh: cannot install ${clients_missing[*]}" >&2; exit 1; }
fi

for tool in curl openssl h2load; do
  command -v "$tool" >/dev/null || { echo "clients.sh: $tool is still missing after the install" >&2; exit 1; }
done
