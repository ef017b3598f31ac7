-- Builds offline from this checkout:
--   luarocks --lua-version=5.4 make --deps-mode=none rockspec/dashscope-0.1.0-1.rockspec
-- --deps-mode=none because luarocks does not see Debian's packaged rocks: install lua-cjson with
-- apt-get (package lua-cjson) or from your own rocks server.
rockspec_format = "3.0"
package = "dashscope"
version = "0.1.0-1"
source = {
  url = "git+file:///dev/null", -- built from a checkout with `luarocks make`
}
description = {
  summary = "Alibaba Cloud DashScope video synthesis (VideoRetalk, Emoji, LivePortrait) for Lua",
  detailed = [[
A C module over libcurl's multi interface: submit VideoRetalk, Emoji and LivePortrait jobs from Lua
tables checked against the documented contract, poll them without blocking, and get Lua tables back.
]],
  license = "MIT",
  labels = { "dashscope", "aliyun", "video", "curl" },
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson",
}
external_dependencies = {
  CURL = { library = "curl" }, -- Debian keeps curl.h under /usr/include/x86_64-linux-gnu (incdirs below)
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" }, -- Debian: libhiredis-dev
}
build = {
  type = "builtin",
  -- The same files as make install: dashscope.lua (the entry) over the C core dashscope.core
  -- (dashscope/core.so), dashscope.hiredis (dashscope/hiredis.so), and the Lua layer dashscope/*.lua.
  modules = {
    dashscope = "src/dashscope.lua",
    ["dashscope.core"] = {
      sources = { "src/buffer.c", "src/class.c", "src/clock.c", "src/core.c", "src/form.c", "src/fs.c", "src/headers.c",
                  "src/integers.c", "src/logfile.c", "src/request.c", "src/scrub.c", "src/signals.c", "src/transport.c", "src/url.c", "src/watch.c" },
      libraries = { "curl" },
      incdirs = { "$(CURL_INCDIR)", "/usr/include/x86_64-linux-gnu" },
      libdirs = { "$(CURL_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L" },
    },
    -- the Redis quota store's connection, apart from the core (which loads without hiredis)
    ["dashscope.hiredis"] = {
      sources = { "src/hiredis/hiredis.c", "src/class.c" },
      libraries = { "hiredis" },
      incdirs = { "$(HIREDIS_INCDIR)" },
      libdirs = { "$(HIREDIS_LIBDIR)" },
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
}
