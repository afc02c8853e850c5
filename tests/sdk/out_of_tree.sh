#!/usr/bin/env bash
# out_of_tree.sh BUILD_DIR SOURCE_DIR
#
# Checks that a plugin author needs nothing but the installed SDK:
#   1. cmake --install BUILD_DIR into a temporary prefix;
#   2. copy sdk/template to a temporary directory outside the source tree;
#   3. build it with `make`, pkg-config seeing only <prefix>'s .pc files,
#      and check no compile command reaches into the source or build tree;
#   4. run its test (`make test`) with WEFT_HARNESS_WEFTD unset: the
#      installed harness must find <prefix>/bin/weftd by itself;
#   5. build the same copy with CMake (-DCMAKE_PREFIX_PATH=<prefix>) and run
#      ctest there, again without WEFT_HARNESS_WEFTD;
#   6. the guide is installed: share/doc/weft-sdk/ holds README.md,
#      realtime.md and widgets.md, the same as sdk/README.md,
#      docs/realtime.md and web/README.md;
#   7. remove the temporary directories (WEFT_KEEP_TMP=1 keeps them).
#
# Steps 4 and 5 also move the prefix first (the .pc files and the CMake
# package are relocatable, and so must be the weftd the harness picks):
# the first prefix is renamed away, so a path baked in at install time
# would not be found.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd -P)
src=$(cd "$2" && pwd -P)

step() { printf '\n==== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }
die() { printf '\nsdk_out_of_tree: FAIL: %s\n' "$*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-sdk-oot.XXXXXX")
tmp=$(cd "$tmp" && pwd -P)
cleanup() {
    local rc=$?
    if [ "${WEFT_KEEP_TMP:-0}" = 1 ]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
    [ $rc -eq 0 ] || echo "sdk_out_of_tree: FAILED (exit $rc)" >&2
}
trap cleanup EXIT

case "$tmp/" in
    "$src"/* | "$build"/*) die "temporary dir $tmp is inside the source or build tree; set TMPDIR elsewhere" ;;
esac

prefix=$tmp/prefix
copy=$tmp/hello
log=$tmp/build.log

# The build output just logged must not mention the source or build tree.
check_log() {
    if grep -n -F -e "$src/" -e "$build/" "$log"; then
        die "the commands above reached into the source or build tree"
    fi
}

# Nothing from the caller's environment may point the compiler at the tree.
unset CPATH C_INCLUDE_PATH LIBRARY_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR \
      CMAKE_PREFIX_PATH WEFT_HARNESS_WEFTD || true
export PKG_CONFIG_PATH=

step "1. install the SDK and weftd from $build into $prefix"
run cmake --install "$build" --prefix "$prefix"

weftd=$prefix/bin/weftd
[ -x "$weftd" ] ||
    die "$weftd was not installed: host/CMakeLists.txt needs install(TARGETS weftd RUNTIME DESTINATION \${CMAKE_INSTALL_BINDIR})"
run "$weftd" --version

# GNUInstallDirs picks lib, lib64 or lib/<multiarch>: look where it went.
mapfile -t pcs < <(find "$prefix" -path '*/pkgconfig/weft-sdk.pc')
[ ${#pcs[@]} -eq 1 ] || die "want one weft-sdk.pc under $prefix, found ${#pcs[@]}"
pcdir=$(dirname "${pcs[0]}")
[ -f "$pcdir/weft-harness.pc" ] || die "no weft-harness.pc next to ${pcs[0]}"
[ -f "$prefix/include/weft/weft.h" ] || die "no include/weft/weft.h under $prefix"
echo "pkg-config dir: $pcdir"

# Relocate: everything below must follow the prefix, not the path given
# to `cmake --install` (and certainly not the configured one).
moved=$tmp/moved-prefix
run mv "$prefix" "$moved"
prefix=$moved
weftd=$prefix/bin/weftd
pcdir=$prefix/${pcdir#"$tmp/prefix/"}
[ -f "$pcdir/weft-sdk.pc" ] || die "lost $pcdir/weft-sdk.pc after the move"

step "2. copy sdk/template to $copy"
run cp -R "$src/sdk/template" "$copy"
run make -C "$copy" clean   # in case someone built inside the template

step "3. build with make and pkg-config (PKG_CONFIG_PATH=$pcdir)"
export PKG_CONFIG_PATH=$pcdir
for m in weft-sdk weft-harness; do
    flags=$(pkg-config --cflags --libs "$m") || die "pkg-config cannot use $m.pc"
    echo "$m: $flags"
    case " $flags " in
        *"$src"* | *"$build"*) die "$m.pc points into the source or build tree: $flags" ;;
    esac
    case " $flags " in
        *" -I$prefix/"*) ;;
        *) die "$m.pc does not point at the installed headers under $prefix: $flags (its prefix must follow the install prefix)" ;;
    esac
done
run make -C "$copy" 2>&1 | tee "$log"
[ -f "$copy/hello.so" ] || die "make did not produce hello.so"
check_log
nm -D --defined-only "$copy/hello.so" | grep -q ' weft_plugin_entry$' ||
    die "hello.so does not export weft_plugin_entry"

# The test must run the weftd of the (moved) prefix, told by the .pc file.
# A test using the account and SSE helpers links with weft-harness alone
# (they need jansson: the .pc file must bring it), and the weftd it would
# start is the one of the (moved) prefix.
cat > "$tmp/helpers.c" <<'EOF'
#include <stdio.h>
#include <weft/harness.h>
int main(void)
{
    weft_harness_user u = {0};
    weft_harness_sse_event ev = {0};

    if (weft_harness_user_register(NULL, "x", NULL, &u) != -1 ||
        weft_harness_sse_next(NULL, NULL, 0, &ev) != -1)
        return 1;
    weft_harness_user_free(&u);
    weft_harness_sse_close(NULL);
    puts(weft_harness_installed_weftd);
    return 0;
}
EOF
weftd_var=$(pkg-config --variable=weftd weft-harness)
[ -n "$weftd_var" ] || die "weft-harness.pc has no variable weftd"
# shellcheck disable=SC2046,SC2086 # pkg-config's words and LDFLAGS split
run "${CC:-cc}" -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags weft-harness) \
    -DWEFT_HARNESS_INSTALLED_WEFTD="\"$weftd_var\"" \
    -o "$tmp/helpers" "$tmp/helpers.c" ${LDFLAGS:-} $(pkg-config --libs weft-harness)
[ "$("$tmp/helpers")" -ef "$prefix/bin/weftd" ] ||
    die "the harness's installed weftd is not $prefix/bin/weftd"

step "4. run the template's test with make (no WEFT_HARNESS_WEFTD)"
unset WEFT_HARNESS_WEFTD
run make -C "$copy" test 2>&1 | tee "$log"
check_log
grep -F -e "-DWEFT_HARNESS_INSTALLED_WEFTD=" "$log" | grep -q -F "$pcdir/" ||
    die "test_hello was not built with weft-harness.pc's weftd for $prefix as WEFT_HARNESS_INSTALLED_WEFTD"

step "5. build the same copy with CMake (-DCMAKE_PREFIX_PATH=$prefix) and run ctest (no WEFT_HARNESS_WEFTD)"
export PKG_CONFIG_PATH=
# LDFLAGS is set by the sanitizer build (the installed harness is
# instrumented there); a plugin author normally leaves it empty.
run cmake -S "$copy" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_EXE_LINKER_FLAGS="${LDFLAGS:-}"
run cmake --build "$tmp/cmake-build" --verbose 2>&1 | tee "$log"
[ -f "$tmp/cmake-build/hello.so" ] || die "CMake did not produce hello.so"
check_log
grep -F -e "-DWEFT_HARNESS_INSTALLED_WEFTD=" "$log" | grep -q -F "$prefix/" ||
    die "test_hello was not built with WeftSDK's WEFT_HARNESS_INSTALLED_WEFTD for $prefix"
run ctest --test-dir "$tmp/cmake-build" --output-on-failure

step "6. the guide under $prefix/share/doc/weft-sdk"
docdir=$prefix/share/doc/weft-sdk
for pair in README.md:sdk/README.md realtime.md:docs/realtime.md \
            widgets.md:web/README.md; do
    inst=$docdir/${pair%%:*}
    orig=$src/${pair#*:}
    [ -f "$inst" ] || die "$inst was not installed (from ${pair#*:})"
    cmp -s "$inst" "$orig" || die "$inst differs from ${pair#*:}"
    echo "ok: $inst"
done

step "7. clean up"
echo "sdk_out_of_tree: OK"
