#!/usr/bin/env bash
# Memory-safety runs of the compiled extension.
#
#   tools/sanitize.sh asan [PYTEST ARGS...]   AddressSanitizer + UBSan
#   tools/sanitize.sh valgrind [ITERATIONS]   valgrind memcheck
#   tools/sanitize.sh all                     both, default arguments
#
# asan: builds the extension with -DRNNCORE_SANITIZE=address,undefined
#   (CMakeLists.txt) at -O1 in build/sanitize-asan, then
#   A. runs the test suite (PYTEST ARGS, default: all of tests/) with leak
#      detection on.  Any ASan or UBSan report fails the run, and so does a
#      leak record whose allocation stack passes through rnncore (_core*.so or
#      src/cpp/).  Records without an rnncore frame are the interpreter's and
#      numpy's import-time state, freed by nobody at exit; they are counted.
#      (CPython and numpy have no frame pointers, so their stacks are cut
#      short by ASan's fast unwinder; step B has full stacks.)
#   B. runs tools/sanitize/loop.py (every entry point, repeatedly) with full
#      stack unwinding: after the suppressions of tools/sanitize/lsan.supp
#      (numpy's import-time state only) it must leak nothing at all.
# valgrind: builds an uninstrumented RelWithDebInfo extension in
#   build/sanitize-valgrind and runs tools/sanitize/loop.py under memcheck
#   once per instruction set valgrind can run (reference, avx2: valgrind has
#   no AVX-512); any error or definitely-lost block fails.
#
# The installed package is never touched: a copy of python/rnncore with the
# new _core*.so is staged beside each build, and Python runs with -S (no
# .pth files, so an editable install cannot shadow the copy) and PYTHONPATH
# = the copy + site-packages.  ASan is preloaded with libstdc++ (the Python
# executable does not link libstdc++; without it ASan cannot intercept the
# first C++ exception).  Python allocates with malloc (PYTHONMALLOC=malloc)
# so that ASan and valgrind see its objects.  Child processes (the tests
# start some) inherit all of this; reports of non-Python children (hypothesis
# runs git) are shown but not judged.
#
# Environment: PYTHON (default python), CXX (default c++, GCC or Clang: the
# compiler of a new build directory, and the one asked for its libasan),
# SANITIZE_ITERATIONS (loop iterations under ASan, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# The interpreter itself, not a launcher script (pyenv's shim would run
# Python outside valgrind and ASan's preload alike).
python=$("${PYTHON:-python}" -c 'import sys; print(sys.executable)')
cxx=${CXX:-c++}
tools=$root/tools/sanitize

# Computed once, before any preload: helper processes must not run under ASan
# (their own reports would land among the ones judged).
site_packages=$("$python" -c 'import site; print(":".join(site.getsitepackages() + [site.getusersitepackages()]))')

# build DIR CMAKE-ARGS...: configure and build the extension in DIR.
build() {
  local dir=$1
  shift
  local cmakedir
  cmakedir=$("$python" -m pybind11 --cmakedir) || {
    echo "sanitize.sh: pybind11 is not installed (pip install pybind11)" >&2
    exit 2
  }
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -Dpybind11_DIR="$cmakedir" -DPython_EXECUTABLE="$python" \
    "$@" > "$dir.cmake.log" 2>&1 ||
    { cat "$dir.cmake.log"; exit 2; }
  ninja -C "$dir" > "$dir.build.log" 2>&1 || { tail -50 "$dir.build.log"; exit 2; }
}

# stage DIR: DIR/pkg/rnncore = the sources of python/rnncore + DIR's _core.
stage() {
  local dir=$1
  rm -rf "$dir/pkg"
  mkdir -p "$dir/pkg"
  cp -r "$root/python/rnncore" "$dir/pkg/"
  find "$dir/pkg" \( -name '__pycache__' -o -name '_core*.so' \) -prune -exec rm -rf {} +
  cp "$dir"/_core*.so "$dir/pkg/rnncore/"
}

# run_python DIR ARGS...: the staged package's Python.
run_python() {
  local dir=$1
  shift
  PYTHONPATH="$dir/pkg:$site_packages" PYTHONMALLOC=malloc "$python" -S "$@"
}

asan() {
  local dir=$root/build/sanitize-asan
  echo "== sanitize: building with address,undefined in $dir"
  build "$dir" -DRNNCORE_SANITIZE=address,undefined "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
  stage "$dir"
  local logs=$dir/logs
  rm -rf "$logs"
  mkdir -p "$logs/suite" "$logs/loop"
  export LD_PRELOAD="$("$cxx" -print-file-name=libasan.so) $("$cxx" -print-file-name=libstdc++.so)"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$tools/ubsan.supp"
  export LSAN_OPTIONS="suppressions=$tools/lsan.supp:print_suppressions=0:exitcode=0"
  local failed=0

  echo "== sanitize A: test suite under ASan + UBSan, leak detection on"
  local start=$SECONDS rc=0
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:halt_on_error=1:log_path=$logs/suite/asan" \
    run_python "$dir" -m pytest -q -p no:cacheprovider "${@:-tests}" > "$logs/suite/stderr.log" 2>&1 || rc=$?
  grep -v "^    #\|^XFAIL" "$logs/suite/stderr.log" | tail -n 25
  echo "   pytest exit status $rc after $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || failed=1
  report "$logs/suite" || failed=1

  echo "== sanitize B: tools/sanitize/loop.py under ASan, full stacks, ${SANITIZE_ITERATIONS:-3} iterations"
  start=$SECONDS
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:halt_on_error=1:fast_unwind_on_malloc=0:malloc_context_size=40:log_path=$logs/loop/asan" \
    run_python "$dir" "$tools/loop.py" "${SANITIZE_ITERATIONS:-3}" > "$logs/loop/stderr.log" 2>&1 ||
    { echo "   loop.py FAILED"; failed=1; }
  grep -v "^    #" "$logs/loop/stderr.log" | tail -n 5
  echo "   $((SECONDS - start)) s"
  report "$logs/loop" strict || failed=1
  unset LD_PRELOAD
  return $failed
}

# report LOGDIR [strict]: judge the sanitizer logs of one step.
report() {
  local logs=$1 strict=${2:-}
  local errors
  errors=$(grep -l "ERROR: AddressSanitizer\|runtime error:" "$logs"/* 2>/dev/null || true)
  if [ -n "$errors" ]; then
    echo "   FAILED: sanitizer errors in: $errors"
    grep -h -A30 "ERROR: AddressSanitizer\|runtime error:" $errors | head -80
    return 1
  fi
  echo "   no ASan or UBSan errors"
  local python_logs=() f
  for f in "$logs"/*; do
    if grep -q "python\|Python/\|Objects/\|_core" "$f"; then python_logs+=("$f"); fi
  done
  if [ "${#python_logs[@]}" -eq 0 ]; then
    echo "   no leak records"
    return 0
  fi
  local listing
  listing=$(env -u LD_PRELOAD "$python" "$tools/leak_records.py" "${python_logs[@]}") || {
    echo "   FAILED: leak records from rnncore:"
    echo "$listing" | grep RNNCORE
    return 1
  }
  if [ -z "$listing" ]; then
    echo "   no leak records"
  elif [ -n "$strict" ]; then
    echo "   FAILED: unsuppressed leaks:"
    echo "$listing"
    return 1
  else
    echo "   leak records at exit (none from rnncore): $(echo "$listing" | wc -l), $(echo "$listing" |
      awk '{s += $3} END {print s}') bytes"
    echo "$listing" | sed 's/^/     /' | sort | uniq -c | sort -rn | head -12
  fi
}

valgrind_run() {
  local dir=$root/build/sanitize-valgrind iterations=${1:-2} failed=0 isa
  echo "== sanitize: building without instrumentation in $dir"
  build "$dir"
  stage "$dir"
  for isa in reference avx2; do
    echo "== sanitize C: tools/sanitize/loop.py under valgrind memcheck, ISA $isa, $iterations iterations"
    local start=$SECONDS
    RNNCORE_FORCE_ISA=$isa PYTHONPATH="$dir/pkg:$site_packages" PYTHONMALLOC=malloc \
      valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
      --errors-for-leak-kinds=definite --num-callers=30 --suppressions="$tools/valgrind.supp" \
      --log-file="$dir/valgrind-$isa.log" "$python" -S "$tools/loop.py" "$iterations" || failed=1
    echo "   $((SECONDS - start)) s; summary:"
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|in use at exit" \
      "$dir/valgrind-$isa.log" | sed 's/^==[0-9]*== /     /' || true
  done
  return $failed
}

mode=${1:-all}
[ $# -gt 0 ] && shift
case $mode in
  asan) asan "$@" ;;
  valgrind) valgrind_run "$@" ;;
  all) status=0; asan || status=1; valgrind_run || status=1; exit $status ;;
  *) echo "usage: tools/sanitize.sh asan [PYTEST ARGS...] | valgrind [ITERATIONS] | all" >&2; exit 2 ;;
esac
