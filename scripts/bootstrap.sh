#!/usr/bin/env bash
# Offramp bootstrap: idempotent set-up of a fresh Debian machine with Node 20.
#   1. the pinned pnpm, 2. `pnpm install --frozen-lockfile`, 3. a working WebGPU adapter
#   (installs Mesa's lavapipe >= 24 and the Vulkan loader only when no adapter works),
#   4. the build. Prints the adapter it ends up with.
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1
cd "$(dirname "$0")/.."

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js 20 or newer is required (found: $(node -v 2>/dev/null || echo none))."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi; }

# 1. pnpm, pinned
if ! command -v pnpm >/dev/null || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  log "installing pnpm@$PNPM_VERSION"
  if ! as_root npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1; then
    npm install -g --prefix "$HOME/.local" "pnpm@$PNPM_VERSION" >/dev/null
    export PATH="$HOME/.local/bin:$PATH"
    log "pnpm installed under ~/.local/bin: add it to your PATH"
  fi
fi
log "pnpm $(pnpm --version)"

# 2. dependencies
log "pnpm install --frozen-lockfile"
pnpm install --frozen-lockfile --reporter=silent

# 3. WebGPU adapter
probe() { node scripts/probe-adapter.mjs "$@"; }
if probe --quiet 2>/dev/null; then
  log "a WebGPU adapter already works; no driver installed"
else
  log "no working WebGPU adapter: installing Mesa lavapipe (software Vulkan) and the Vulkan loader"
  if [ ! -r /etc/debian_version ]; then
    die "not a Debian machine. Install a Vulkan driver with Vulkan 1.1+ (Mesa >= 24 'lavapipe' works without a GPU) and the Vulkan loader (libvulkan1), then re-run."
  fi
  if ! as_root true; then
    die "not root and no passwordless sudo. As root run: apt-get install -y mesa-vulkan-drivers libvulkan1 (Mesa >= 24; on Debian 12 add -t bookworm-backports after adding the backports suite), then re-run."
  fi
  export DEBIAN_FRONTEND=noninteractive
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  as_root apt-get update -qq
  cand=$(apt-cache policy mesa-vulkan-drivers | awk '/Candidate:/ {print $2}')
  major=$(echo "$cand" | sed -E 's/^([0-9]+:)?([0-9]+).*/\2/')
  if [ -n "$major" ] && [ "$major" -ge 24 ] 2>/dev/null; then
    log "Mesa $cand from the default suite"
    as_root apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    [ -n "$codename" ] || die "cannot tell the Debian codename from /etc/os-release"
    log "default Mesa is $cand (< 24): adding $codename-backports from this machine's own Debian source"
    src=/etc/apt/sources.list.d/offramp-backports.list
    if [ ! -f "$src" ]; then
      uri=""
      if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        # deb822: first URIs line of the stanza that lists this codename
        uri=$(awk -v c="$codename" '/^URIs:/ {u=$2} /^Suites:/ { for (i=2;i<=NF;i++) if ($i==c) { print u; exit } }' /etc/apt/sources.list.d/debian.sources)
      fi
      if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk -v c="$codename" '$1=="deb" { for (i=2;i<=NF;i++) if ($i==c) { print $(i-1); exit } }' /etc/apt/sources.list | sed 's/\[.*\]//')
      fi
      [ -n "$uri" ] || die "no Debian apt source for '$codename' found to derive $codename-backports from"
      echo "deb $uri $codename-backports main" | as_root tee "$src" >/dev/null
      as_root apt-get update -qq
    fi
    as_root apt-get install -y -qq -t "$codename-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  probe --quiet 2>/dev/null || die "still no working WebGPU adapter after installing Mesa; run 'node scripts/probe-adapter.mjs' for details"
fi

# 3b. HAProxy, for the test of server replicas behind a load balancer (packages/server/test/replicas.test.ts);
#     installed only when missing
if command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]; then
  log "haproxy present"
elif [ -r /etc/debian_version ] && as_root true; then
  log "installing haproxy (load balancer for the server replica test)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq haproxy >/dev/null
else
  log "warning: haproxy is missing and cannot be installed here (needs root on Debian); the server replica test needs it: apt-get install -y haproxy"
fi

# 3c. Chromium, for the playground's browser tests (apps/playground/test: headless, WebGPU on SwiftShader,
#     driven by playwright-core); installed only when missing
if command -v chromium >/dev/null || [ -n "${CHROMIUM_PATH:-}" ]; then
  log "chromium present"
elif [ -r /etc/debian_version ] && as_root true; then
  log "installing chromium (headless browser for the playground tests)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq chromium >/dev/null
else
  log "warning: chromium is missing and cannot be installed here (needs root on Debian); the playground tests need it: apt-get install -y chromium (or set CHROMIUM_PATH)"
fi

# 4. build
log "pnpm build"
pnpm run build >/dev/null
probe 2>/dev/null

# 5. the ONNX Runtime CPU path (optional: onnxruntime-node's CPU binary ships in the package; its install
#    script, which downloads CUDA binaries from outside the package registry, is denied in pnpm-workspace.yaml)
if (cd packages/core && node -e "import('onnxruntime-node').then(o => o.InferenceSession ? process.exit(0) : process.exit(1), () => process.exit(1))") 2>/dev/null; then
  log "ONNX Runtime CPU path: available (createDevice({ backend: 'auto' }) uses it on a software adapter)"
else
  log "ONNX Runtime CPU path: onnxruntime-node does not load here; classifiers run on WebGPU (everything else works)"
fi
