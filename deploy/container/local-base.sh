#!/bin/sh
# Build a minimal Debian base image for the Containerfile without any container registry:
# debootstrap (minbase, with python3, python3-venv and CA certificates) from the mirror that
# apt on this machine is configured with, the machine's extra CA certificates added, and the
# tree imported into podman.
#
#   sudo deploy/container/local-base.sh [IMAGE [CACHE_DIR]]
#
# IMAGE defaults to localhost/cli-devops-base:bookworm. The root filesystem is kept as a
# tarball in CACHE_DIR (default build/container) and reused by later runs; delete it to rebuild.
set -eu

image=${1:-localhost/cli-devops-base:bookworm}
cache=${2:-build/container}
suite=bookworm
tarball="$cache/debian-$suite-base.tar"

if podman image exists "$image"; then
    echo "$image exists"
    exit 0
fi

mirror() {
    # The first Debian mirror in apt's configuration (deb822 .sources, then one-line lists).
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'tolower($1) == "uris:" && $2 ~ /\/debian\/?$/ { print $2; exit }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) { print $i; exit } }' "$f"
    done
}

if [ ! -s "$tarball" ]; then
    url=$(mirror | head -n 1)
    if [ -z "$url" ]; then
        echo "no Debian mirror found in apt's sources" >&2
        exit 1
    fi
    mkdir -p "$cache"
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$suite" "$root" "$url"
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
fi
podman import --change 'CMD ["/bin/sh"]' "$tarball" "$image"
