#!/usr/bin/env bash
# Build the real-services test images, each only when missing:
#
#   ollama-stack-test/open-webui:<hash>  Open WebUI from PyPI (open-webui==0.12.4, CPU torch)
#   ollama-stack-test/mcpo:<hash>        mcpo from PyPI + uv/uvx + the bundled extensions' MCP servers
#   ollama-stack-test/ollama-api:<hash>  the project's Ollama API stand-in (ollama-api/server.py)
#
# and point ollama-stack-test/<name>:current at each (tests use :current).
# <hash> covers the recipe: the base recipe below and every file in the image's
# directory (install.sh, image.conf, sources). Nothing is pulled from a registry.
#
# How: one Debian bookworm rootfs from mmdebstrap, imported once as
# ollama-stack-test/base:<hash>; each image is `docker run` of the base with its
# install.sh (build kit mounted read-only under a tmpfs /tmp, so nothing of it,
# neither the host's CA nor its pip config, stays in the image), then
# `docker commit` with the instructions in image.conf. The images build in parallel.
#
# Usage: tests/images/real/build.sh [NAME...]   (default: all three)
# REAL_FORCE_REBUILD=1 rebuilds even when the tag exists. Logs: $REAL_BUILD_LOG_DIR
# (default: a temp dir, removed on success, kept and named on failure).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="ollama-stack-test"
label="ollama-stack.test=1"
all_images=(open-webui mcpo ollama-api)
# Bumped when this driver changes in a way that changes the images it makes.
driver_version=2
suite=bookworm
base_include="python3,python3-venv,curl,ca-certificates"
uv_pin="uv==0.13.9"   # bootstrap uv used by the install scripts (not kept in open-webui)

t_start=$SECONDS
say() { echo "build.sh: $*"; }
die() { echo "build.sh: $*" >&2; exit 1; }

if [ "$#" -gt 0 ]; then images=("$@"); else images=("${all_images[@]}"); fi
for name in "${images[@]}"; do
    [ -f "$here/$name/install.sh" ] && [ -f "$here/$name/image.conf" ] || die "unknown image: $name"
done

command -v docker >/dev/null 2>&1 || die "docker client not found"
docker info >/dev/null 2>&1 || die "docker daemon not reachable (docker info failed)"

hash16() { sha256sum | cut -c1-16; }

base_hash="$(printf 'driver=%s suite=%s variant=apt include=%s uv=%s\n' \
    "$driver_version" "$suite" "$base_include" "$uv_pin" | hash16)"
base_tag="$prefix/base:$base_hash"

image_hash() {
    {
        echo "base=$base_hash"
        (cd "$here/$1" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | hash16
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# --- what is missing? -----------------------------------------------------------
todo=()
declare -A tag_of=()
for name in "${images[@]}"; do
    tag_of[$name]="$prefix/$name:$(image_hash "$name")"
    id="$(image_id "${tag_of[$name]}")"
    if [ -n "$id" ] && [ "${REAL_FORCE_REBUILD:-0}" != "1" ]; then
        docker tag "${tag_of[$name]}" "$prefix/$name:current"
        say "${tag_of[$name]} up to date (${id:7:12}) -> :current"
    else
        todo+=("$name")
    fi
done
if [ "${#todo[@]}" -eq 0 ]; then
    say "all up to date ($((SECONDS - t_start)) s)"
    exit 0
fi

# --- work dir, and cleanup on every path ------------------------------------------
work="$(mktemp -d "${TMPDIR:-/var/tmp}/ollama-stack-real.XXXXXX")"
logs="${REAL_BUILD_LOG_DIR:-$work/logs}"
mkdir -p "$logs"
containers=()
for name in "${todo[@]}"; do containers+=("ollama-stack-real-build-$name-$$"); done
containers+=("ollama-stack-real-base-$$")

mounts_under() {  # mount points below $1, deepest first
    awk -v p="$1/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for c in "${containers[@]}"; do
        docker rm -f "$c" >/dev/null 2>&1 || true
    done
    # mmdebstrap mounts proc/sys/dev in its rootfs while it runs: if it was
    # interrupted they may still be there. Never rm -r across a mount.
    local m
    for m in $(mounts_under "$work"); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    if [ -n "$(mounts_under "$work")" ]; then
        echo "build.sh: mounts remain under $work; not removing it" >&2
    elif [ "$rc" -ne 0 ] && [ -z "${REAL_BUILD_LOG_DIR:-}" ]; then
        # keep the logs of a failed build, drop everything else (rootfs: GBs)
        find "$work" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf --one-file-system {} +
        echo "build.sh: logs kept in $logs" >&2
    else
        rm -rf --one-file-system "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build kit: the host's pip configuration, CA bundle, uv settings ------------
# Everything lands under /tmp/build in the build container (a tmpfs: it is not
# committed). Local paths the pip configuration names are mounted read-only at
# /tmp/build/host<path> and the configuration is rewritten to match.
kit="$work/in"
mkdir -p "$kit"
ca=""
for cand in "${REAL_BUILD_CA:-}" "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [ -n "$cand" ] && [ -f "$cand" ]; then ca="$cand"; break; fi
done
[ -n "$ca" ] && cp "$ca" "$kit/ca.crt" || : > "$kit/ca.crt"

declare -A pipconf=()
if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    while IFS= read -r line; do
        if [[ "$line" =~ ^(global|install|:env:)\.([A-Za-z0-9_-]+)=\'(.*)\'$ ]]; then
            pipconf[${BASH_REMATCH[2]}]="${BASH_REMATCH[3]}"
        fi
    done < <(python3 -m pip config list 2>/dev/null || true)
fi
host_dirs=()
for key in find-links extra-index-url index-url constraint requirement; do
    for tok in ${pipconf[$key]:-}; do
        p="${tok#file://}"
        case "$p" in /*) ;; *) continue ;; esac
        [ -f "$p" ] && p="$(dirname "$p")"
        case "$p" in */simple|*/simple/) p="$(dirname "${p%/}")" ;; esac
        [ -d "$p" ] && host_dirs+=("${p%/}")
    done
done
mapfile -t host_dirs < <(printf '%s\n' "${host_dirs[@]}" | awk 'NF' | sort -u)
rewrite() {  # token by token: the longest host dir that prefixes a path wins
    local out=() tok d best p
    for tok in $1; do
        p="${tok#file://}"
        best=""
        for d in "${host_dirs[@]}"; do
            case "$p/" in "$d"/*) [ "${#d}" -gt "${#best}" ] && best="$d" ;; esac
        done
        [ -n "$best" ] && tok="${tok/$best//tmp/build/host$best}"
        out+=("$tok")
    done
    printf '%s' "${out[*]}"
}
{
    echo "[global]"
    for key in "${!pipconf[@]}"; do
        case "$key" in
            cert) echo "cert = /tmp/build/in/ca.crt" ;;
            *) echo "$key = $(rewrite "${pipconf[$key]}")" ;;
        esac
    done
    [ -n "${pipconf[no-cache-dir]:-}" ] || echo "no-cache-dir = true"
    [ -n "${pipconf[disable-pip-version-check]:-}" ] || echo "disable-pip-version-check = true"
} > "$kit/pip.conf"
commas() { local s; s="$(rewrite "$1")"; printf '%s' "${s// /,}"; }
cat > "$kit/env.sh" <<EOF
# Sourced by the install scripts inside the build container.
export PIP_CONFIG_FILE=/tmp/build/in/pip.conf
export SSL_CERT_FILE=/tmp/build/in/ca.crt REQUESTS_CA_BUNDLE=/tmp/build/in/ca.crt
export UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never UV_PYTHON=/usr/bin/python3
export UV_CACHE_DIR=/tmp/build/uv-cache UV_LINK_MODE=copy UV_NO_PROGRESS=1
export UV_INDEX_STRATEGY=unsafe-best-match
export UV_FIND_LINKS='$(commas "${pipconf[find-links]:-}")'
export UV_EXTRA_INDEX_URL='$(rewrite "${pipconf[extra-index-url]:-}")'
export UV_CONSTRAINT='$(rewrite "${pipconf[constraint]:-}")'
[ -n "\$UV_FIND_LINKS" ] || unset UV_FIND_LINKS
[ -n "\$UV_EXTRA_INDEX_URL" ] || unset UV_EXTRA_INDEX_URL
[ -n "\$UV_CONSTRAINT" ] || unset UV_CONSTRAINT
if [ ! -x /tmp/build/uvenv/bin/uv ]; then
    python3 -m venv /tmp/build/uvenv
    /tmp/build/uvenv/bin/pip install --quiet '$uv_pin'
fi
export PATH="/tmp/build/uvenv/bin:\$PATH"
EOF
mount_args=(-v "$kit:/tmp/build/in:ro")
for d in "${host_dirs[@]}"; do mount_args+=(-v "$d:/tmp/build/host$d:ro"); done

# --- base rootfs (shared) ---------------------------------------------------------
if [ -z "$(image_id "$base_tag")" ] || [ "${REAL_FORCE_REBUILD:-0}" = "1" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap not found (apt-get install mmdebstrap)"
    mirror="${REAL_BUILD_MIRROR:-}"
    if [ -z "$mirror" ]; then
        mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
            | awk '/^URIs:/ && $2 !~ /security/ && $2 ~ /debian/ { print $2; exit }')"
    fi
    if [ -z "$mirror" ]; then
        mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '$1 == "deb" && $0 !~ /security/ && $2 ~ /debian/ { print $2; exit }')"
    fi
    mirror="${mirror:-http://deb.debian.org/debian}"
    say "building $base_tag (mmdebstrap $suite from $mirror)"
    t0=$SECONDS
    if ! mmdebstrap --variant=apt --include="$base_include" "$suite" "$work/base-rootfs" "$mirror" \
            >"$logs/base.log" 2>&1; then
        tail -n 40 "$logs/base.log" >&2
        die "mmdebstrap failed"
    fi
    # Leave no apt lists or host resolv.conf behind.
    rm -rf "$work/base-rootfs/var/lib/apt/lists/"* "$work/base-rootfs/var/cache/apt/"*.bin
    : > "$work/base-rootfs/etc/resolv.conf"
    if ! tar -C "$work/base-rootfs" -c . | docker import \
            --change "LABEL $label" --change "LABEL ollama-stack.test.hash=$base_hash" \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["/bin/bash"]' - "$base_tag" >>"$logs/base.log" 2>&1; then
        tail -n 20 "$logs/base.log" >&2
        die "docker import of the base failed"
    fi
    rm -rf --one-file-system "$work/base-rootfs"
    say "built $base_tag ($(image_id "$base_tag" | cut -c8-19), $((SECONDS - t0)) s)"
    # Bases of older recipes: drop them (fails harmlessly while something uses them).
    docker image ls --filter "label=$label" --format '{{.Repository}}:{{.Tag}}' "$prefix/base" \
        | grep -vxF "$base_tag" | xargs -r docker image rm >/dev/null 2>&1 || true
else
    say "$base_tag up to date"
fi

# --- the images, in parallel -------------------------------------------------------
build_one() {
    local name="$1" tag="${tag_of[$1]}" ctr="ollama-stack-real-build-$1-$$"
    local changes=() line
    while IFS= read -r line; do
        case "$line" in ''|'#'*) continue ;; esac
        changes+=(--change "$line")
    done < "$here/$name/image.conf"
    changes+=(--change "LABEL $label" --change "LABEL ollama-stack.test.hash=${tag##*:}"
              --change "LABEL ollama-stack.test.image=$name")
    docker rm -f "$ctr" >/dev/null 2>&1 || true
    docker run --name "$ctr" --label "$label" \
        --tmpfs /tmp:rw,exec,mode=1777 "${mount_args[@]}" \
        -v "$here/$name:/tmp/build/recipe:ro" \
        --entrypoint /bin/sh "$base_tag" /tmp/build/recipe/install.sh
    docker commit "${changes[@]}" "$ctr" "$tag" >/dev/null
    docker rm "$ctr" >/dev/null
}

declare -A pid_of=() t_of=()
for name in "${todo[@]}"; do
    say "building ${tag_of[$name]} (log: $logs/$name.log)"
    t_of[$name]=$SECONDS
    ( build_one "$name"; echo $((SECONDS - ${t_of[$name]})) > "$logs/$name.secs" ) >"$logs/$name.log" 2>&1 &
    pid_of[$name]=$!
done
failed=0
for name in "${todo[@]}"; do
    if wait "${pid_of[$name]}"; then
        old="$(image_id "$prefix/$name:current")"
        docker tag "${tag_of[$name]}" "$prefix/$name:current"
        new="$(image_id "${tag_of[$name]}")"
        size="$(docker image inspect -f '{{.Size}}' "$new" | awk '{ printf "%.2f GB", $1 / 1e9 }')"
        say "built ${tag_of[$name]} (${new:7:12}, $size, $(cat "$logs/$name.secs") s) -> :current"
        # Drop the build :current pointed at before, if nothing uses it.
        if [ -n "$old" ] && [ "$old" != "$new" ]; then
            docker image rm "$old" >/dev/null 2>&1 || true
        fi
    else
        failed=1
        echo "build.sh: FAILED ${tag_of[$name]}; last lines of $logs/$name.log:" >&2
        tail -n 40 "$logs/$name.log" | sed 's/^/    /' >&2
    fi
done
[ "$failed" -eq 0 ] || die "build failed"
say "done ($((SECONDS - t_start)) s)"
