#!/usr/bin/env bash
# Builds the self-contained single-file vrescue for linux-x64 (no .NET needed on the guest) and lays out what
# `vrescue guard install` needs: the binary; the units and example config are inside it as well.
# Usage: packaging/guard/build.sh [OUTDIR]   (default packaging/guard/out)
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(readlink -f "${1:-$here/out}")
rid=${RID:-linux-x64}
mkdir -p "$out"
dotnet publish "$root/src/VRescue.Cli/VRescue.Cli.csproj" -c Release -r "$rid" --self-contained \
  -p:PublishSingleFile=true -p:PublishReadyToRun=true -p:IncludeNativeLibrariesForSelfExtract=false -p:DebugType=none \
  -o "$out" --nologo -v q -clp:ErrorsOnly
rm -f "$out"/*.xml
cp "$here"/vrescue-guard.service "$here"/vrescue-guard-once.service "$here"/vrescue-guard-once.timer "$here"/guard.example.yaml "$out"/
echo "built $out/vrescue ($(du -h "$out/vrescue" | cut -f1), $rid, self-contained single file)"
echo "install: sudo $out/vrescue guard install   # binary, /etc/vrescue/guard.yaml, systemd units"
