#!/usr/bin/env bash
# Build ThunderSTORM (zitmen/thunderstorm, GPL v3) with plain javac, offline, for dblink's
# real-ThunderSTORM integration test (tests/test_thunderstorm.py).
#
#   tools/build_thunderstorm.sh SRC_DIR [IJ_JAR] [OUT_JAR]
#     SRC_DIR: a checkout of zitmen/thunderstorm at tag dev-2016-07-20-b1 (its lib/ jars included), e.g.
#              git clone https://github.com/zitmen/thunderstorm && git -C thunderstorm checkout dev-2016-07-20-b1
#     IJ_JAR:  the ImageJ 1.x jar to compile against (default /usr/share/java/ij.jar)
#     OUT_JAR: the plugin jar to write (default SRC_DIR/build/Thunder_STORM.jar)
#   then: DBLINK_THUNDERSTORM_JAR=OUT_JAR pytest tests/test_thunderstorm.py
#
# The sources are not changed in SRC_DIR: they are copied, and three small fixes for a current
# JDK (17+) are applied to the copy:
#   * sun.reflect.generics.reflectiveObjects.NotImplementedException (gone from the JDK) →
#     java.lang.UnsupportedOperationException (2 files, bi-plane code not used by 2-D analysis);
#   * an unused import of javafx.geometry.Pos (JavaFX is no longer in the JDK) is removed;
#   * the help pane falls back to a plain JEditorPane when swingbox cannot load (JDK 9+ lacks
#     com.sun.net.ssl.internal.ssl.Provider; the NoClassDefFoundError broke the results table).
# The dependency jars of lib/ (commons-math3, gson, opencsv, ...) are merged into the plugin jar,
# as ThunderSTORM's Maven shade step does, so one jar goes into ImageJ's plugins folder.
set -euo pipefail
src=${1:?usage: build_thunderstorm.sh SRC_DIR [IJ_JAR] [OUT_JAR]}
src=$(cd "$src" && pwd)
ij=${2:-/usr/share/java/ij.jar}
out=${3:-$src/build/Thunder_STORM.jar}
[ -d "$src/src/main/java/cz/cuni/lf1/lge/ThunderSTORM" ] || { echo "build_thunderstorm.sh: $src is not a ThunderSTORM source folder" >&2; exit 2; }
[ -f "$ij" ] || { echo "build_thunderstorm.sh: ImageJ jar not found: $ij" >&2; exit 2; }
command -v javac >/dev/null || { echo "build_thunderstorm.sh: javac not found (install a JDK)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/src/main/java" "$work/java"
# the fixes for a current JDK
grep -rl "sun.reflect.generics.reflectiveObjects.NotImplementedException" "$work/java" | while read -r f; do
  sed -i -e '/import sun\.reflect\.generics\.reflectiveObjects\.NotImplementedException;/d' \
         -e 's/new NotImplementedException()/new UnsupportedOperationException()/g' "$f"
done
grep -rl "^import javafx\." "$work/java" | while read -r f; do sed -i '/^import javafx\./d' "$f"; done
# the help pane (cssbox/swingbox) needs com.sun.net.ssl.internal.ssl.Provider, gone since JDK 9: its
# NoClassDefFoundError broke the results table; fall back to a plain JEditorPane
help="$work/java/cz/cuni/lf1/lge/ThunderSTORM/UI/HelpButton.java"
sed -i 's/public static JEditorPane createEditorUsingOurClassLoader()\(.*\){/public static JEditorPane createEditorUsingOurClassLoader() {\n        try { return createSwingBoxEditor(); } catch (Throwable t) { return new JEditorPane(); }\n    }\n\n    static JEditorPane createSwingBoxEditor()\1{/' "$help"
grep -q createSwingBoxEditor "$help" || { echo "build_thunderstorm.sh: the HelpButton fix did not apply (not tag dev-2016-07-20-b1?)" >&2; exit 1; }
libs=()
for j in "$src"/lib/*.jar; do
  case "$j" in *-javadoc.jar|*-sources.jar|*/ij.jar|*/MathJaxTaglet.jar|*/patstaglets.jar) ;; *) libs+=("$j") ;; esac
done
cp_libs=$(IFS=:; echo "${libs[*]}")
mkdir -p "$work/classes"
find "$work/java" -name '*.java' > "$work/files.txt"
javac --release 8 -nowarn -encoding UTF-8 -cp "$ij:$cp_libs" -d "$work/classes" @"$work/files.txt" 2>&1 \
  | grep -v "^Note: \|bootstrap class path\|^warning: \[options\]\|^1 warning" || true
[ -f "$work/classes/cz/cuni/lf1/lge/ThunderSTORM/AnalysisPlugIn.class" ] || { echo "build_thunderstorm.sh: compilation failed" >&2; exit 1; }
# resources (plugins.config, services, help) and the version file Maven would filter
cp -r "$src/src/main/resources/." "$work/classes/"
version=$(sed -n 's:.*<version>\(dev-[^<]*\)</version>.*:\1:p' "$src/pom.xml" | head -n 1)
echo "version=${version:-unknown}" > "$work/classes/thunderstorm.properties"
# the dependencies, unpacked into the same jar (their signatures and manifests left out)
( cd "$work/classes" && for j in "${libs[@]}"; do unzip -qo "$j"; done && rm -f META-INF/*.SF META-INF/*.RSA META-INF/*.DSA META-INF/MANIFEST.MF )
cp -r "$src/src/main/resources/META-INF/." "$work/classes/META-INF/"
mkdir -p "$(dirname "$out")"
rm -f "$out"
jar cf "$out" -C "$work/classes" .
echo "$out"
