#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds the fixtures with real tools, runs every test.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

packages=(lvm2 qemu-utils gdisk fdisk e2fsprogs libvhdi-utils zstd python3 util-linux bsdutils ntfs-3g testdisk nbdkit libnbd-bin fuse3 xfsprogs squashfs-tools time btrfs-progs prometheus python3-aiosmtpd curl)
missing=()
for p in "${packages[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"install ok installed"* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [[ $(id -u) -eq 0 ]]; then
  tests/fixtures/generate.sh
  tests/fixtures/carve/generate.sh
else
  echo "test.sh: not root, fixture images that need loop devices are not generated; those tests skip (never under CI=true)"
fi

# Failed tests print their messages (minimal console verbosity); the summary line per project follows.
dotnet test VRescue.slnx --nologo -v q --logger "console;verbosity=minimal" -- RunConfiguration.TreatNoTestsAsError=false
