-- Which public functions may yield, shown by calling them (spec/types_spec.lua checks ---@async
-- against this). The client yields in one place only: its wait loop, Engine:run
-- (src/dashscope/engine.lua), which calls the `sleep` option (ngx.sleep, a coroutine's yield)
-- between steps. So a function may yield exactly when a call of it can reach Engine:run.
--
-- Every annotated function (and iterator alias) is listed with a call and what the call shows:
-- "yields" when it reaches the wait loop, "returns" when it comes back (or raises a misuse) without
-- reaching it. Each call runs on a fresh client (nothing listens at its base_url) whose Engine:run
-- is replaced, for the call, by a stop: nothing is sent and nothing waits. A "returns" call shows
-- one path, not all: its entry is a reviewed claim that the function never waits, kept honest by
-- making whoever adds a public function list it here (types_spec fails on one that is not).
-- Owns nothing of the module: it reads `client._engine`'s metatable to put the stop in and takes
-- it out again.
local dashscope = require("dashscope")

local yields = {}

local CLIENT = { api_key = "sk-test", base_url = "http://127.0.0.1:9/api/v1" }

-- A job of each model, valid and never sent.
local FIELDS = {
  videoretalk = { video_url = "https://example.invalid/in.mp4", audio_url = "https://example.invalid/in.wav" },
  emoji = { image_url = "https://example.invalid/face.png", driven_id = "mengwa_kaixin" },
  liveportrait = { image_url = "https://example.invalid/face.png", audio_url = "https://example.invalid/in.wav" },
  liveportrait_detect = { image_url = "https://example.invalid/face.png" },
  emoji_detect = { image_url = "https://example.invalid/face.png" },
}

-- What Engine:run raises instead of looping.
local STOP = setmetatable({}, { __tostring = function() return "stopped at the wait loop" end })

-- Calls fn(...) with Engine:run stopped: whether the call reached it, and pcall's results.
local function stopped(engine_object, fn, ...)
  local Engine = getmetatable(engine_object)
  local run = rawget(Engine, "run")
  local reached = false
  Engine.run = function()
    reached = true
    error(STOP, 0)
  end
  local ok, err = pcall(fn, ...)
  Engine.run = run
  return reached, ok, err
end

-- A fresh client with what the calls need: a task handle, a small file, paths to write to,
-- journals (one holding an ambiguous job: its submit stopped on its way, then reopened).
local World = {}
World.__index = World

local function world(fake_uv)
  local w = setmetatable({ client = dashscope.new(CLIENT), paths = {}, journals = {}, fake_uv = fake_uv }, World)
  w.task = w.client:task("some-id", "liveportrait")
  return w
end

function World:path()
  local path = os.tmpname()
  self.paths[#self.paths + 1] = path
  return path
end

function World:file()
  local path = self:path()
  local f = assert(io.open(path, "wb"))
  f:write("not empty")
  f:close()
  return dashscope.file(path)
end

-- A path where nothing is (for a download's output).
function World:nowhere()
  local path = self:path()
  os.remove(path)
  return path
end

function World:journal()
  local j = assert(self.client:journal(self:path()))
  self.journals[#self.journals + 1] = j
  return j
end

-- A journal whose job "job" is ambiguous: as after a run that died with its submit on the wire.
function World:ambiguous()
  local j = self:journal()
  stopped(self.client._engine, j.submit, j, "job", "liveportrait", FIELDS.liveportrait)
  j:close()
  j = assert(self.client:journal(j.path))
  self.journals[#self.journals + 1] = j
  assert(j:job("job").state == "ambiguous", "the stopped submit left no ambiguous job")
  return j
end

function World:close()
  for _, j in ipairs(self.journals) do j:close() end
  if self.driver then self.driver:detach() end
  self.client:close()
  for _, path in ipairs(self.paths) do os.remove(path) end
end

local function model_call(method)
  return function(w) return w.client[method](w.client, FIELDS[method]) end
end

local Y, R = "yields", "returns"

-- [annotated name] = { what the call shows, the call }.
yields.CALLS = {
  ["dashscope.is_misuse"] = { R, function() return dashscope.is_misuse("x") end },
  ["dashscope.nearest"] = { R, function() return dashscope.nearest("vidoe_url", { "video_url" }) end },
  ["dashscope.range_text"] = { R, function() return dashscope.range_text({ min = 1, max = 2 }) end },
  ["dashscope.new"] = { R, function() dashscope.new(CLIENT):close() end },
  ["dashscope.check"] = { R, function() return dashscope.check("liveportrait", FIELDS.liveportrait) end },
  ["dashscope.file"] = { R, function(w) return w:file() end },

  ["dashscope.Client:videoretalk"] = { Y, model_call("videoretalk") },
  ["dashscope.Client:emoji"] = { Y, model_call("emoji") },
  ["dashscope.Client:liveportrait"] = { Y, model_call("liveportrait") },
  ["dashscope.Client:liveportrait_detect"] = { Y, model_call("liveportrait_detect") },
  ["dashscope.Client:emoji_detect"] = { Y, model_call("emoji_detect") },
  ["dashscope.Client:submit"] = { Y, function(w) return w.client:submit("liveportrait", FIELDS.liveportrait) end },
  ["dashscope.Client:upload"] = { Y, function(w) return w.client:upload("liveportrait", w:file()) end },
  ["dashscope.Client:task"] = { R, function(w) return w.client:task("other-id") end },
  ["dashscope.Client:tasks"] = { Y, function(w) return w.client:tasks() end },
  ["dashscope.Client:each_task"] = { R, function(w) return w.client:each_task() end },
  ["dashscope.Client:wait_all"] = { Y, function(w) return w.client:wait_all({ w.task }) end },
  ["dashscope.Client:wait_any"] = { Y, function(w) return w.client:wait_any({ w.task }) end },
  ["dashscope.Client:each_done"] = { R, function(w) return w.client:each_done({ w.task }) end },
  ["dashscope.Client:watch"] = { R, function(w) return w.client:watch(w.task, {}) end },
  ["dashscope.Client:step"] = { R, function(w) return w.client:step() end },
  ["dashscope.Client:sockets"] = { R, function(w) return w.client:sockets() end },
  ["dashscope.Client:socket_ready"] = { R, function(w) return w.client:socket_ready(0, false, false) end },
  ["dashscope.Client:journal"] = { R, function(w) return w:journal() end },
  ["dashscope.Client:quota_store"] = { R, function(w) return w.client:quota_store() end },
  ["dashscope.Client:busy"] = { R, function(w) return w.client:busy() end },
  ["dashscope.Client:close"] = { R, function(w) return w.client:close() end },

  ["dashscope.Task:status"] = { R, function(w) return w.task:status() end },
  ["dashscope.Task:ended"] = { R, function(w) return w.task:ended() end },
  ["dashscope.Task:poll"] = { Y, function(w) return w.task:poll() end },
  ["dashscope.Task:wait"] = { Y, function(w) return w.task:wait() end },
  ["dashscope.Task:result"] = { R, function(w) return w.task:result() end },
  ["dashscope.Task:outcome"] = { R, function(w) return w.task:outcome() end },
  ["dashscope.Task:cancel"] = { Y, function(w) return w.task:cancel() end },
  ["dashscope.Task:download"] = { Y, function(w) return w.task:download(w:nowhere()) end },
  ["dashscope.Task:progress"] = { R, function(w) return w.task:progress() end },

  ["dashscope.Journal:submit"] = { Y, function(w) return w:journal():submit("job", "liveportrait", FIELDS.liveportrait) end },
  ["dashscope.Journal:job"] = { R, function(w) return w:ambiguous():job("job") end },
  ["dashscope.Journal:jobs"] = { R, function(w) return w:ambiguous():jobs()() end },
  ["dashscope.Journal:task"] = { R, function(w)
    local j = w:ambiguous()
    j:claim("job", "some-id")
    return j:task("job")
  end },
  ["dashscope.Journal:download"] = { Y, function(w)
    local j = w:ambiguous()
    j:claim("job", "some-id")
    return j:download("job", w:nowhere())
  end },
  ["dashscope.Journal:resolve"] = { Y, function(w) return w:ambiguous():resolve("job") end },
  ["dashscope.Journal:claim"] = { R, function(w) return w:ambiguous():claim("job", false) end },
  ["dashscope.Journal:retry"] = { R, function(w) -- only an ended or refused job may be retried: a misuse here
    return w:ambiguous():retry("job")
  end },
  ["dashscope.Journal:compact"] = { R, function(w) return w:ambiguous():compact() end },
  ["dashscope.Journal:size"] = { R, function(w) return w:ambiguous():size() end },
  ["dashscope.Journal:close"] = { R, function(w) return w:ambiguous():close() end },

  ["dashscope.uv.attach"] = { R, function(w)
    w.driver = require("dashscope.uv").attach(w.client, w.fake_uv(), { on_error = error })
    return w.driver
  end },
  ["dashscope.uv.Driver:kick"] = { R, function(w)
    w.driver = require("dashscope.uv").attach(w.client, w.fake_uv(), { on_error = error })
    return w.driver:kick()
  end },
  ["dashscope.uv.Driver:detach"] = { R, function(w)
    w.driver = require("dashscope.uv").attach(w.client, w.fake_uv(), { on_error = error })
    return w.driver:detach()
  end },
}

-- The iterators the loops of each_done and each_task call: an @alias of a fun type each.
yields.ALIASES = {
  ["dashscope.EachDoneIterator"] = { Y, function(w) return w.client:each_done({ w.task })() end },
  ["dashscope.EachTaskIterator"] = { Y, function(w) return w.client:each_task()() end },
}

--- Runs `entry`'s call on a fresh client (`fake_uv` makes a stand-in luv module): whether it
--- reached the wait loop, and pcall's results (false and the error when it raised, STOP included).
function yields.run(entry, fake_uv)
  local w = world(fake_uv)
  local reached, ok, err = stopped(w.client._engine, entry[2], w)
  w:close()
  return reached, ok, err
end

--- Whether `err` is the stop put in Engine:run.
function yields.is_stop(err)
  return err == STOP
end

return yields
