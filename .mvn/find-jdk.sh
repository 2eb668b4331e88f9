# Sourced by ./vitq and ./build: sets VITQ_JAVA_HOME to a JDK >= 21, or explains and exits.
# Order: $JAVA_HOME, then the usual install locations, then the java on PATH.

vitq_java_major() {
  # Prints the feature version of the JDK at $1 (e.g. 21), or nothing.
  local home=$1
  [ -x "$home/bin/java" ] && [ -x "$home/bin/javac" ] || return 0
  local release
  release=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$home/release" 2>/dev/null)
  if [ -z "$release" ]; then
    release=$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  fi
  echo "$release"
}

vitq_find_jdk() {
  local candidates=()
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  local dir
  for dir in /usr/lib/jvm/* /usr/java/* /opt/java/* /opt/jdk* /usr/local/java/* /usr/local/opt/openjdk*/libexec/openjdk.jdk/Contents/Home \
             /Library/Java/JavaVirtualMachines/*/Contents/Home "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/*; do
    [ -d "$dir" ] && candidates+=("$dir")
  done
  if command -v javac >/dev/null 2>&1; then
    candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")")
  fi
  local best="" best_major=0 home major
  for home in "${candidates[@]}"; do
    major=$(vitq_java_major "$home")
    [ -n "$major" ] || continue
    # JAVA_HOME wins when it is new enough; otherwise take the newest found.
    if [ "$home" = "${JAVA_HOME:-}" ] && [ "$major" -ge 21 ]; then best=$home; break; fi
    if [ "$major" -ge 21 ] && [ "$major" -gt "$best_major" ]; then best=$home; best_major=$major; fi
  done
  if [ -z "$best" ]; then
    echo "vitq needs a JDK 21 or newer and found none (looked at JAVA_HOME, /usr/lib/jvm, /opt/java, ~/.sdkman and the java on PATH)." >&2
    echo "Install one (e.g. Temurin 21) or point JAVA_HOME at it." >&2
    exit 1
  fi
  VITQ_JAVA_HOME=$best
}
