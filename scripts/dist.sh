#!/bin/sh
# make rock / make dist: the release of this checkout, into the directory given (build/dist):
#   lua-dashscope-VERSION.tar.gz          the release tarball (the rockspecs' source.url), top
#                                         directory lua-dashscope-VERSION/
#   dashscope-VERSION-1.src.rock          source rocks: each a zip of its rockspec and that tarball,
#   dashscope-hiredis-VERSION-1.src.rock  so that `luarocks install ./X.src.rock` needs no network
# VERSION is the C core's (DS_VERSION in src/core.h, dashscope.VERSION): every rockspec must be
# named for it, or nothing is made.
# The tarball holds the files git tracks, as they are in the working tree (an edit not yet
# committed is in it), and is reproducible: names sorted, owner 0, modes from the executable bit
# alone, every time that of the last commit (SOURCE_DATE_EPOCH overrides), gzip without a name or
# time. So the tarball of the tag v0.1.0 is the release asset, byte for byte.
# This file owns build/dist (or the directory given); it reads the checkout and writes nothing else.
set -eu
out=${1:-build/dist}

fail() { echo "make rock: $*" >&2; exit 1; }

version=$(sed -n 's/^#define DS_VERSION "\([^"]*\)"$/\1/p' src/core.h)
[ -n "$version" ] || fail "no DS_VERSION in src/core.h"
base=lua-dashscope-$version
for spec in rockspec/*.rockspec; do
  case "$spec" in
    rockspec/dashscope-"$version"-1.rockspec | rockspec/dashscope-hiredis-"$version"-1.rockspec) ;;
    *) fail "$spec is not named for the version of src/core.h ($version)" ;;
  esac
done
for name in dashscope dashscope-hiredis; do
  spec=rockspec/$name-$version-1.rockspec
  [ -f "$spec" ] || fail "src/core.h says version $version, and there is no $spec"
  grep -q "/v$version/$base.tar.gz\"" "$spec" || fail "$spec: source.url is not the tarball $base.tar.gz of v$version"
  grep -q "dir = \"$base\"" "$spec" || fail "$spec: source.dir is not \"$base\""
done

# The files: tracked ones that exist (a deletion not yet committed is left out); outside a git
# checkout (an unpacked tarball), every file but what the build makes.
list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files | while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done
  else
    find . -type f ! -path './build/*' ! -path './.git/*' ! -path './luarocks-tree/*' \
      ! -name '*.o' ! -name '*.so' ! -path '*/__pycache__/*' | sed 's|^\./||'
  fi
}
# Outside git, the time the tarball gave its files: an unpacked release makes itself again.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || stat -c %Y src/core.h)}

mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
list_files | LC_ALL=C sort > "$stage/files"
[ -s "$stage/files" ] || fail "no files to pack"
tar --create --format=gnu --no-recursion --files-from="$stage/files" --transform="s|^|$base/|" \
  --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --mode='u=rwX,go=rX' \
  | gzip -n -9 > "$stage/$base.tar.gz"

# A source rock: the rockspec and the tarball side by side, with the same fixed times.
for name in dashscope dashscope-hiredis; do
  mkdir "$stage/$name"
  cp "rockspec/$name-$version-1.rockspec" "$stage/$base.tar.gz" "$stage/$name/"
  touch -d "@$epoch" "$stage/$name"/*
  rock=$name-$version-1.src.rock
  rm -f "$out/$rock"
  (cd "$stage/$name" && TZ=UTC zip -q -X -D "../$rock" "$name-$version-1.rockspec" "$base.tar.gz")
  mv "$stage/$rock" "$out/$rock"
done
mv "$stage/$base.tar.gz" "$out/$base.tar.gz"
echo "make rock: $out/$base.tar.gz, $out/dashscope-$version-1.src.rock, $out/dashscope-hiredis-$version-1.src.rock"
