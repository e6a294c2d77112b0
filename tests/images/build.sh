#!/usr/bin/env bash
# Build the test stub image (ollama-stack-test/stub:latest) that stands in for
# ollama/ollama, open-webui and mcpo in the Docker integration tests.
#
# The image is FROM scratch and holds only Debian's static busybox plus the
# scripts in tests/images/stub/, so nothing is pulled from any registry.
# Idempotent: if an image with this tag was built from the same inputs (hash
# kept in a label) it is left alone. STUB_FORCE_REBUILD=1 forces a rebuild.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stub_dir="$here/stub"
tag="ollama-stack-test/stub:latest"

die() { echo "build.sh: $*" >&2; exit 1; }

# --- find a static busybox -------------------------------------------------
busybox=""
for cand in /bin/busybox /usr/bin/busybox; do
    if [ -x "$cand" ]; then busybox="$cand"; break; fi
done
[ -n "$busybox" ] || die "busybox not found at /bin/busybox or /usr/bin/busybox (apt-get install busybox-static)"

is_static() {
    local out
    if command -v file >/dev/null 2>&1; then
        out="$(file -L "$1" 2>/dev/null || true)"
        case "$out" in
            *"statically linked"*|*"static-pie linked"*) return 0 ;;
            *"dynamically linked"*) return 1 ;;
        esac
    fi
    if command -v ldd >/dev/null 2>&1; then
        out="$(ldd "$1" 2>&1 || true)"
        case "$out" in
            *"not a dynamic executable"*|*"statically linked"*) return 0 ;;
            *) return 1 ;;
        esac
    fi
    echo "build.sh: warning: neither file nor ldd available; assuming $1 is static" >&2
    return 0
}
is_static "$busybox" || die "$busybox is dynamically linked; install Debian's busybox-static"

command -v docker >/dev/null 2>&1 || die "docker client not found"
docker info >/dev/null 2>&1 || die "docker daemon not reachable (docker info failed)"

# --- inputs and their hash ---------------------------------------------------
shims=()
for f in "$stub_dir"/*; do
    name="$(basename "$f")"
    case "$name" in
        Dockerfile|serve.sh|*.md) ;;
        *) [ -f "$f" ] && shims+=("$name") ;;
    esac
done

hash="$(
    {
        cd "$stub_dir"
        sha256sum Dockerfile serve.sh "${shims[@]}"
        sha256sum "$here/build.sh" | cut -d' ' -f1
        sha256sum "$busybox" | cut -d' ' -f1
    } | sha256sum | cut -c1-32
)"

old_id="$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)"
if [ -n "$old_id" ] && [ "${STUB_FORCE_REBUILD:-0}" != "1" ]; then
    old_hash="$(docker image inspect -f '{{ index .Config.Labels "ollama-stack.test.hash" }}' "$tag" 2>/dev/null || true)"
    if [ "$old_hash" = "$hash" ]; then
        echo "build.sh: $tag is up to date (${old_id:7:12})"
        exit 0
    fi
fi

# --- assemble the build context ----------------------------------------------
ctx="$(mktemp -d "${TMPDIR:-/tmp}/ollama-stack-stub.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
umask 022
root="$ctx/rootfs"
mkdir -p "$root/bin" "$root/usr/local/bin" "$root/srv/www/api" "$root/srv/empty" \
         "$root/etc" "$root/tmp" "$root/root"
chmod 1777 "$root/tmp"

cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# Applet symlinks, relative so they work inside the image.
while IFS= read -r applet; do
    case "$applet" in ""|busybox|*/*) continue ;; esac
    ln -s busybox "$root/bin/$applet"
done < <("$busybox" --list)
[ -e "$root/bin/sh" ] || die "busybox has no sh applet"

install -m 0755 "$stub_dir/serve.sh" "$root/serve.sh"
for s in "${shims[@]}"; do
    install -m 0755 "$stub_dir/$s" "$root/usr/local/bin/$s"
done

printf '{"version":"0.0.0-stub"}\n' > "$root/srv/www/api/version"
printf '{"status":true}\n' > "$root/srv/www/health"
cat > "$root/srv/www/openapi.json" <<'JSON'
{"openapi":"3.1.0","info":{"title":"ollama-stack test stub","version":"0.0.0-stub"},"paths":{}}
JSON
# Keep the empty root in the image (some builders drop empty directories).
: > "$root/srv/empty/.keep"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

cp "$stub_dir/Dockerfile" "$ctx/Dockerfile"

# --- build -------------------------------------------------------------------
log="$ctx/build.log"
echo "build.sh: building $tag"
if ! DOCKER_BUILDKIT=0 docker build \
        --label "ollama-stack.test=1" \
        --label "ollama-stack.test.hash=$hash" \
        -t "$tag" "$ctx" >"$log" 2>&1; then
    cat "$log" >&2
    die "docker build failed"
fi

new_id="$(docker image inspect -f '{{.Id}}' "$tag")"
echo "build.sh: built $tag (${new_id:7:12})"
# Drop the previous build if nothing uses it any more.
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi
