#!/usr/bin/env bash
# Build the plugin jar offline with plain javac: fiji-plugin/build.sh [IJ_JAR] [OUT_DIR]
#   IJ_JAR: Fiji's jars/ij-*.jar or Debian's /usr/share/java/ij.jar (default)
#   OUT_DIR: where DBlink_.jar goes (default fiji-plugin/build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ij=${1:-${IJ_JAR:-/usr/share/java/ij.jar}}
out=${2:-$here/build}
[ -f "$ij" ] || { echo "build.sh: ImageJ jar not found: $ij (give its path)" >&2; exit 2; }
classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
javac --release 8 -nowarn -encoding UTF-8 -cp "$ij" -d "$classes" "$here"/src/main/java/dblink/*.java 2>&1 \
  | grep -v "bootstrap class path\|^warning: \[options\]\|^1 warning" || true
[ -f "$classes/dblink/DBlink_Reconstruct.class" ] || { echo "build.sh: compilation failed" >&2; exit 1; }
cp "$here/src/main/resources/plugins.config" "$classes/"
# the version: one source, python/dblink/__init__.py (the Java plugin reads dblink/version.properties)
version=$(sed -n 's/^__version__ *= *"\([^"]*\)".*/\1/p' "$here/../python/dblink/__init__.py")
[ -n "$version" ] || { echo "build.sh: no __version__ in python/dblink/__init__.py" >&2; exit 1; }
mkdir -p "$classes/dblink"
echo "version=$version" > "$classes/dblink/version.properties"
mkdir -p "$out"
# written under a temporary name and renamed: a concurrent reader (tests run in parallel) never
# sees a half-written jar
jar cf "$out/.DBlink_.jar.$$" -C "$classes" .
mv -f "$out/.DBlink_.jar.$$" "$out/DBlink_.jar"
echo "$out/DBlink_.jar"
