#!/bin/sh
# make demo: one real job of each model, end to end, against the bundled local server that
# spec/with-server started (never the paid service). Jobs take a few seconds each, as the server's
# timing is set below, so the status changes can be watched.
set -eu
: "${DASHSCOPE_TEST_BASE_URL:?run through spec/with-server (make demo)}"
LUA=${LUA:-lua5.4}
here=$(dirname "$0")

curl -sS --fail -X POST -H 'Content-Type: application/json' \
    --data '{"durations": {"pending": 0.5, "pre_processing": 0.5, "running": 2.0, "post_processing": 0.5}}' \
    "$DASHSCOPE_TEST_CONTROL/config" >/dev/null

export DASHSCOPE_HTTP_BASE_URL="$DASHSCOPE_TEST_BASE_URL"
export DASHSCOPE_API_KEY="sk-test-0123456789abcdef"
unset DASHSCOPE_API_KEY_FILE_PATH

echo "== VideoRetalk (lip-sync a video to new audio) =="
$LUA "$here/videoretalk.lua" https://example.com/demo/talk.mp4 https://example.com/demo/voice.wav
echo
echo "== Emoji (animate a face with an expression template) =="
$LUA "$here/emoji.lua"
echo
echo "== LivePortrait (animate a portrait from speech) =="
$LUA "$here/liveportrait.lua" https://example.com/demo/face.png https://example.com/demo/voice.wav
echo
echo "demo: all three models ran end to end against the local server at $DASHSCOPE_TEST_BASE_URL"
