#!/bin/sh
# Serves examples/openresty in the foreground (Ctrl-C stops it):
#
#   DASHSCOPE_API_KEY=sk-... sh examples/openresty/run.sh [PORT]      (default 8080)
#   curl 'http://127.0.0.1:8080/job?image_url=https://...&audio_url=https://...'
#
# Lays out a prefix (PREFIX, default a new temp directory): conf/nginx.conf filled in from the
# template, lua/handler.lua, lua/dashscope.lua and lua/dashscope/ (core.so, *.lua, ...) from
# the LuaJIT build (BUILD, default build/luajit: `make LUA_VERSION=luajit`), logs/ and tmp/. Everything is made
# world-readable, since nginx's workers run as `nobody` when it is started as root. Then it execs
# nginx, so the caller's $! is nginx's master process. WORKERS (default 4) sets worker_processes;
# JOB_RATE (default 2r/s) and JOB_BURST (default 10) how many jobs one client address may submit
# (nginx limit_req). QUOTA_DICT (default dashscope) names the lua_shared_dict declared: handler.lua
# looks for "dashscope", so another name leaves each worker keeping the quotas alone (with a warning
# in the error log; the specs check that fallback).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
port=${1:-8080}
build=${BUILD:-$here/../../build/luajit}
job_rate=${JOB_RATE:-2r/s}
job_burst=${JOB_BURST:-10}
workers=${WORKERS:-4}
quota_dict=${QUOTA_DICT:-dashscope}
prefix=${PREFIX:-$(mktemp -d "${TMPDIR:-/tmp}/dashscope-openresty.XXXXXX")}

if [ ! -f "$build/dashscope/core.so" ]; then
    echo "run.sh: no LuaJIT build in $build: run 'make LUA_VERSION=luajit' first (or set BUILD)" >&2
    exit 1
fi

# Where Debian's packages put the lua module and lua-cjson for Lua 5.1 (LuaJIT).
modules=$(dpkg -L libnginx-mod-http-lua 2>/dev/null | grep '/ngx_http_lua_module\.so$' | head -n 1) || true
modules=${NGINX_MODULES:-$(dirname "${modules:-/usr/lib/nginx/modules/x}")}
cjson=$(dpkg -L lua-cjson 2>/dev/null | grep '/lua/5\.1/cjson\.so$' | head -n 1) || true
cjson_dir=$(dirname "${cjson:-/usr/lib/x86_64-linux-gnu/lua/5.1/x}")

mkdir -p "$prefix/conf" "$prefix/lua/dashscope" "$prefix/logs" "$prefix/tmp"
cp "$build/dashscope.lua" "$prefix/lua/"
# the whole module tree (core.so, *.lua and any subdirectory): whatever the client loads
cp -R "$build/dashscope/." "$prefix/lua/dashscope/"
cp "$here/handler.lua" "$prefix/lua/"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" -e "s|@MODULES@|$modules|g" \
    -e "s|@JOB_RATE@|$job_rate|g" -e "s|@JOB_BURST@|$job_burst|g" \
    -e "s|@WORKERS@|$workers|g" -e "s|@QUOTA_DICT@|$quota_dict|g" \
    -e "s|@LUA_PATH@|$prefix/lua/?.lua|g" \
    -e "s|@LUA_CPATH@|$prefix/lua/?.so;$cjson_dir/?.so|g" \
    "$here/nginx.conf" > "$prefix/conf/nginx.conf"
chmod -R a+rX "$prefix"

echo "run.sh: http://127.0.0.1:$port/job and /ping, prefix $prefix" >&2
exec nginx -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/conf/nginx.conf"
