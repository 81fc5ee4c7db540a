#!/bin/sh
# `npm start` and `npm run demo`: runs node with the settings the container image serves with.
#
# - MALLOC_TRIM_THRESHOLD_=65536: glibc gives freed memory back (docs/operations.md, Memory); a
#   value already in the environment wins.
# - --max-semi-space-size=8 on Node 24 and later, whose V8 grows the young generation to 64 MB
#   semi-spaces (README, Running it for real). Node 22's stops at 16 MB, and there any V8 flag on
#   the command line costs a start about 75 ms: Node 22 then rejects the code cache of its own
#   built-in modules and compiles them from source (Node 24 keeps it).
: "${MALLOC_TRIM_THRESHOLD_:=65536}"
export MALLOC_TRIM_THRESHOLD_
case "$(node -v)" in
  v1[0-9].* | v2[0-3].*) exec node "$@" ;;
  *) exec node --max-semi-space-size=8 "$@" ;;
esac
