-- The BATCH row's process (bench/batch.lua): `dashscope batch ...` exactly as bin/dashscope runs
-- it (dashscope.cli.main.run over the command line), then its own figures written as one JSON
-- object to the file named by BENCH_BATCH_FIGURES: exit status, wall (CLOCK_MONOTONIC), user and
-- system CPU and peak RSS (getrusage: KiB). It measures; it changes nothing of the run.
--
--   BENCH_BATCH_FIGURES=FILE lua5.4 bench/batch_worker.lua batch MANIFEST --json ...
local cjson = require("cjson")
local core = require("dashscope.core")
local main = require("dashscope.cli.main")

local t0, r0 = core.now(), core.rusage()
local status = main.run(arg)
local t1, r1 = core.now(), core.rusage()

local path = os.getenv("BENCH_BATCH_FIGURES")
if path then
  local f = assert(io.open(path, "w"))
  f:write(cjson.encode { status = status, wall = t1 - t0, user = r1.user - r0.user,
                         system = r1.system - r0.system, maxrss = r1.maxrss }, "\n")
  f:close()
end
os.exit(status)
