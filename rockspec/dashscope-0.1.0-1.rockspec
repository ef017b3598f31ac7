-- The rock of lua-dashscope: the C core dashscope.core (over libcurl), the Lua layer, the CLI
-- bin/dashscope and the types. The Redis quota store's connection, dashscope.hiredis, is a rock of
-- its own (dashscope-hiredis-0.1.0-1.rockspec), so that this one needs no libhiredis.
--
--   luarocks install dashscope                       (a rocks server; --deps-mode=none: README)
--   make rock && luarocks install build/dist/dashscope-0.1.0-1.src.rock     (offline, a checkout)
--   luarocks --lua-version=5.4 make --deps-mode=none rockspec/dashscope-0.1.0-1.rockspec
--   luarocks --lua-version=5.4 test rockspec/dashscope-0.1.0-1.rockspec      (the suite, a checkout)
rockspec_format = "3.0"
package = "dashscope"
version = "0.1.0-1"
-- The release tarball of the tag v0.1.0: `make dist` (scripts/dist.sh) makes it byte for byte from
-- that tag's checkout, beside the source rocks, which carry it (so they install offline).
source = {
  url = "https://github.com/lua-dashscope/lua-dashscope/releases/download/v0.1.0/lua-dashscope-0.1.0.tar.gz",
  dir = "lua-dashscope-0.1.0",
}
description = {
  summary = "Alibaba Cloud DashScope video synthesis (VideoRetalk, Emoji, LivePortrait) for Lua",
  detailed = [[
A C module over libcurl's multi interface: submit VideoRetalk, Emoji and LivePortrait jobs from Lua
tables checked against the documented contract, poll them without blocking, and get Lua tables back.
A command-line tool (dashscope), LuaCATS types for lua-language-server (in the rock's types/), and
drivers for blocking code, coroutines, luv/Neovim and OpenResty.
]],
  homepage = "https://github.com/lua-dashscope/lua-dashscope",
  issues_url = "https://github.com/lua-dashscope/lua-dashscope/issues",
  license = "MIT",
  labels = { "dashscope", "aliyun", "video", "curl" },
}
-- Where the system packages lua-cjson (Debian: apt-get install lua-cjson), luarocks does not see it:
-- install with --deps-mode=none (README, "Installing").
dependencies = {
  "lua >= 5.1",
  "lua-cjson >= 2.1",
}
-- libcurl, found the LuaRocks way: the library is probed, in lib/ and in lib/<gcc -print-multiarch>/
-- (multiarch Debian and Ubuntu keep it under /usr/lib/<triplet>/, whatever the architecture). The
-- header is not probed: LuaRocks looks for headers in <prefix>/include only, and multiarch Debian
-- keeps curl/curl.h under /usr/include/<triplet>/, so a header probe would fail there unless
-- CURL_INCDIR were given. The compiler finds it instead: gcc and clang search /usr/include/<triplet>
-- by default, and on other distributions the header is in $(CURL_INCDIR) (incdirs below). No
-- architecture is named here. CURL_DIR=/opt/curl, or CURL_INCDIR= and CURL_LIBDIR=, on the luarocks
-- command line build against another libcurl.
external_dependencies = {
  CURL = { library = "curl" },
}
-- The suite (spec/, busted, the local server in spec/server/) for the interpreter luarocks runs:
-- scripts/luarocks-test.lua builds and runs `make test-one` for it. busted is not declared as a
-- test dependency: luarocks 3.8 would try to fetch it even with Debian's lua-busted installed (the
-- script says what is missing instead).
test = {
  type = "command",
  script = "scripts/luarocks-test.lua",
}
build = {
  type = "builtin",
  -- The same files as make install: dashscope.lua (the entry) over the C core dashscope.core
  -- (dashscope/core.so), and the Lua layer dashscope/*.lua.
  modules = {
    dashscope = "src/dashscope.lua",
    ["dashscope.core"] = {
      sources = { "src/buffer.c", "src/class.c", "src/clock.c", "src/core.c", "src/form.c", "src/fs.c", "src/headers.c",
                  "src/integers.c", "src/logfile.c", "src/request.c", "src/scrub.c", "src/signals.c", "src/transport.c", "src/url.c", "src/watch.c" },
      libraries = { "curl" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L" },
    },
    ["dashscope.calls"] = "src/dashscope/calls.lua",
    ["dashscope.check"] = "src/dashscope/check.lua",
    ["dashscope.client"] = "src/dashscope/client.lua",
    ["dashscope.config"] = "src/dashscope/config.lua",
    ["dashscope.detect"] = "src/dashscope/detect.lua",
    ["dashscope.download"] = "src/dashscope/download.lua",
    ["dashscope.engine"] = "src/dashscope/engine.lua",
    ["dashscope.errors"] = "src/dashscope/errors.lua",
    ["dashscope.files"] = "src/dashscope/files.lua",
    ["dashscope.journal"] = "src/dashscope/journal.lua",
    ["dashscope.journal_digest"] = "src/dashscope/journal_digest.lua",
    ["dashscope.journal_log"] = "src/dashscope/journal_log.lua",
    ["dashscope.journal_resolve"] = "src/dashscope/journal_resolve.lua",
    ["dashscope.jsonable"] = "src/dashscope/jsonable.lua",
    ["dashscope.localfile"] = "src/dashscope/localfile.lua",
    ["dashscope.misuse"] = "src/dashscope/misuse.lua",
    ["dashscope.heap"] = "src/dashscope/heap.lua",
    ["dashscope.values"] = "src/dashscope/values.lua",
    ["dashscope.http"] = "src/dashscope/http.lua",
    ["dashscope.json"] = "src/dashscope/json.lua",
    ["dashscope.limiter"] = "src/dashscope/limiter.lua",
    ["dashscope.listing"] = "src/dashscope/listing.lua",
    ["dashscope.models"] = "src/dashscope/models.lua",
    ["dashscope.nextask"] = "src/dashscope/nextask.lua",
    ["dashscope.planner"] = "src/dashscope/planner.lua",
    ["dashscope.polls"] = "src/dashscope/polls.lua",
    ["dashscope.quota"] = "src/dashscope/quota.lua",
    ["dashscope.quota_redis"] = "src/dashscope/quota_redis.lua",
    ["dashscope.quota_shdict"] = "src/dashscope/quota_shdict.lua",
    ["dashscope.runtimes"] = "src/dashscope/runtimes.lua",
    ["dashscope.servicetime"] = "src/dashscope/servicetime.lua",
    ["dashscope.task"] = "src/dashscope/task.lua",
    ["dashscope.status"] = "src/dashscope/status.lua",
    ["dashscope.url"] = "src/dashscope/url.lua",
    ["dashscope.waits"] = "src/dashscope/waits.lua",
    ["dashscope.uv"] = "src/dashscope/uv.lua",
    -- the command-line tool's modules, under bin/dashscope
    ["dashscope.cli.args"] = "src/dashscope/cli/args.lua",
    ["dashscope.cli.batch"] = "src/dashscope/cli/batch.lua",
    ["dashscope.cli.batch_view"] = "src/dashscope/cli/batch_view.lua",
    ["dashscope.cli.commands"] = "src/dashscope/cli/commands.lua",
    ["dashscope.cli.help"] = "src/dashscope/cli/help.lua",
    ["dashscope.cli.job"] = "src/dashscope/cli/job.lua",
    ["dashscope.cli.jobs"] = "src/dashscope/cli/jobs.lua",
    ["dashscope.cli.library"] = "src/dashscope/cli/library.lua",
    ["dashscope.cli.main"] = "src/dashscope/cli/main.lua",
    ["dashscope.cli.manifest"] = "src/dashscope/cli/manifest.lua",
    ["dashscope.cli.report"] = "src/dashscope/cli/report.lua",
    ["dashscope.cli.tasks"] = "src/dashscope/cli/tasks.lua",
    ["dashscope.cli.text"] = "src/dashscope/cli/text.lua",
    ["dashscope.cli.threads"] = "src/dashscope/cli/threads.lua",
  },
  install = {
    bin = { dashscope = "bin/dashscope" }, -- luarocks wraps it to run with the rock's interpreter
  },
  -- Copied into the rock's own directory, <tree>/lib/luarocks/rocks-<abi>/dashscope/0.1.0-1/
  -- (`luarocks show --rock-dir dashscope`): docs/ (the reference; `luarocks doc dashscope`) and
  -- types/, the LuaCATS types as a lua-language-server addon (types/README.md). The types are
  -- ---@meta stubs, not modules: never on package.path.
  copy_directories = { "docs", "types" },
}
