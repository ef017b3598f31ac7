-- dashscope.hiredis, the Redis quota store's connection, against a real redis-server started on a
-- free loopback port by this spec (spec/support/redis.lua), and against fake servers that
-- misbehave (spec/support/hostile_redis.py). Every lifetime path (close, collection with commands
-- waiting, a server that goes away) is here so that valgrind and ASan see each of them.
local core = require("dashscope.core")
local hiredis = require("dashscope.hiredis")
local redis = require("spec.support.redis")

-- A transport to wait on: its wait(seconds, fd, events) polls the connection's socket too.
local transport = core.new_transport()

-- Performs until `want` outcomes have come (or the connection has closed and given them all),
-- waiting on the socket in between: the outcomes, oldest first.
local function drive(conn, want, rounds)
  local got = {}
  for _ = 1, rounds or 400 do
    for _, r in ipairs(conn:perform()) do got[#got + 1] = r end
    if #got >= want or conn:fd() == nil then break end
    transport:wait(0.05, conn:fd(), conn:events())
  end
  return got
end

local function connect(server)
  local conn = assert(hiredis.connect("127.0.0.1", server.port))
  return conn
end

-- One command's outcome, through its own round trip.
local function call(conn, argv)
  local id = assert(conn:send(argv))
  local got = drive(conn, 1)
  assert.are.equal(1, #got)
  assert.are.equal(id, got[1].id)
  return got[1]
end

-- INFO clients' connected_clients, asked on a connection of its own (which counts itself).
local function clients(server)
  local conn = connect(server)
  local text = call(conn, { "INFO", "clients" }).value
  conn:close()
  return tonumber(text:match("connected_clients:(%d+)"))
end

describe("dashscope.hiredis", function()
  local server, why

  setup(function() server, why = redis.start() end)
  teardown(function() if server then server:stop() end end)

  it("connects without blocking and answers SET, GET, INCR, a nil and an EVAL using TIME, in order", function()
    if not server then return pending(why) end
    local conn = connect(server)
    assert.are.equal("connecting", conn:state())
    assert.are.equal("w", conn:events()) -- hiredis learns of the connect from the first write event
    assert.is_number(conn:fd())
    local ids = {
      conn:send({ "SET", "k", "v" }), conn:send({ "GET", "k" }), conn:send({ "INCR", "n" }),
      conn:send({ "GET", "nothing" }), conn:send({ "INCRBY", "n", 41 }),
      conn:send({ "EVAL", "local t = redis.call('TIME') return { t[1], tonumber(t[2]), false }", 0 }),
      conn:send({ "HGET", "k", "f" }),
    }
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7 }, ids)
    local got = drive(conn, 7)
    assert.are.equal("connected", conn:state())
    assert.are.equal(7, #got)
    for i, r in ipairs(got) do assert.are.equal(i, r.id) end
    assert.are.same({ id = 1, value = "OK" }, got[1])
    assert.are.same({ id = 2, value = "v" }, got[2])
    assert.are.same({ id = 3, value = 1 }, got[3])
    assert.are.same({ id = 4, value = false }, got[4]) -- a nil reply
    assert.are.same({ id = 5, value = 42 }, got[5])   -- a number argument goes as its text
    local t = got[6].value
    assert.are.equal(3, #t)
    assert.truthy(tonumber(t[1]) > 1700000000, t[1]) -- the server's clock: seconds, a string
    assert.is_number(t[2])
    assert.are.equal(false, t[3])
    assert.is_nil(got[7].value)
    assert.truthy(got[7].err:find("WRONGTYPE", 1, true), got[7].err) -- an error reply is an err outcome
    assert.are.equal("r", conn:events()) -- idle: only reading
    conn:close()
  end)

  it("pipelines a thousand commands sent before any reply, and answers them in order", function()
    if not server then return pending(why) end
    local conn = connect(server)
    for i = 1, 1000 do assert.are.equal(i, conn:send({ "INCR", "pipelined" })) end
    assert.are.equal("w", conn:events())
    local got = drive(conn, 1000)
    assert.are.equal(1000, #got)
    for i, r in ipairs(got) do
      assert.are.equal(i, r.id)
      assert.are.equal(i, r.value)
    end
    assert.are.equal(1001, conn:send({ "PING" })) -- ids go on counting
    assert.are.same({ { id = 1001, value = "PONG" } }, drive(conn, 1))
    conn:close()
  end)

  it("takes binary strings both ways, and an array reply nested with nils", function()
    if not server then return pending(why) end
    local conn = connect(server)
    local blob = "a\0b\r\n" .. ("x"):rep(100000)
    assert.are.equal("OK", call(conn, { "SET", "blob", blob }).value)
    assert.are.equal(blob, call(conn, { "GET", "blob" }).value)
    local r = call(conn, { "EVAL", "return { 1, { 'two', { 3 } }, redis.error_reply('no') }", 0 })
    assert.is_nil(r.err) -- a script's table: an error inside an array is { err = ... }
    assert.are.same({ 1, { "two", { 3 } } }, { r.value[1], r.value[2] })
    assert.truthy(r.value[3].err:find("no", 1, true), r.value[3].err)
    assert.are.same({ "v", false }, call(conn, { "MGET", "k", "missing" }).value)
    conn:close()
  end)

  it("reports a refused connection as err outcomes and state closed, and refuses sends after", function()
    if not server then return pending(why) end
    local port = redis.free_port() -- nobody listens there
    local conn, err = hiredis.connect("127.0.0.1", port)
    if not conn then -- refused at once (not on Linux's loopback): the same failure, told by connect
      assert.truthy(err:find("refused", 1, true), err)
      return
    end
    assert.are.same({ 1, 2 }, { conn:send({ "PING" }), conn:send({ "PING" }) })
    local got = drive(conn, 2)
    assert.are.equal(2, #got)
    for i, r in ipairs(got) do
      assert.are.equal(i, r.id)
      assert.is_nil(r.value)
      assert.truthy(r.err:find("refused", 1, true), r.err)
    end
    local state, reason = conn:state()
    assert.are.equal("closed", state)
    assert.truthy(reason:find("refused", 1, true), reason)
    assert.is_nil(conn:fd())
    assert.is_nil(conn:events())
    local id, send_err = conn:send({ "PING" })
    assert.is_nil(id)
    assert.are.equal(reason, send_err)
    assert.are.same({}, conn:perform()) -- on a closed connection: nothing more, no error
    assert.truthy(tostring(conn):find("closed", 1, true))
    conn:close()
  end)

  it("gives err outcomes to commands waiting when the server stops, and a new connect() works after its restart", function()
    if not server then return pending(why) end
    local conn = connect(server)
    assert.are.equal("PONG", call(conn, { "PING" }).value)
    local id = conn:send({ "BLPOP", "never", 0 }) -- waits on the server until it goes
    assert.are.same({}, drive(conn, 1, 4))
    server:stop()
    local got = drive(conn, 1)
    assert.are.equal(1, #got)
    assert.are.equal(id, got[1].id)
    assert.is_string(got[1].err)
    local state, reason = conn:state()
    assert.are.equal("closed", state)
    assert.are.equal(got[1].err, reason)
    assert.is_nil(conn:send({ "PING" }))
    -- commands sent just as the server went: an error each, never a crash (SIGPIPE is kept away)
    server:restart()
    local again = connect(server)
    assert.are.equal("PONG", call(again, { "PING" }).value)
    server:kill()
    local big = ("x"):rep(1000000) -- more than a socket takes at once: hiredis writes again
    for i = 1, 20 do again:send({ "SET", "after" .. i, big }) end
    for _ = 1, 3 do again:action(false, true) end -- writes only: the second meets a closed pipe
    local failed = drive(again, 20)
    assert.are.equal(20, #failed)
    for _, r in ipairs(failed) do assert.is_string(r.err) end
    assert.are.equal("closed", again:state())
    server:restart()
  end)

  it("closes idempotently: waiting commands get err outcomes once, state closed with no error", function()
    if not server then return pending(why) end
    local conn = connect(server)
    assert.are.equal("PONG", call(conn, { "PING" }).value)
    local a, b = conn:send({ "BLPOP", "never", 0 }), conn:send({ "PING" })
    assert.is_true(conn:close())
    assert.is_true(conn:close())
    assert.are.same({ "closed" }, { conn:state() })
    assert.are.same({ { id = a, err = "connection closed" }, { id = b, err = "connection closed" } }, conn:perform())
    assert.are.same({}, conn:perform())
    assert.are.same({ nil, "connection closed" }, { conn:send({ "PING" }) })
    conn:action(true, true) -- nothing to act on
    assert.are.equal("dashscope.Redis (closed, 0 waiting)", tostring(conn))
    if _VERSION == "Lua 5.4" then -- a to-be-closed variable closes it on leaving its block
      local scoped = assert(load([[local hiredis, port = ...
        local c <close> = assert(hiredis.connect("127.0.0.1", port))
        c:send({ "PING" })
        return c]]))(hiredis, server.port)
      assert.are.equal("closed", scoped:state())
      assert.are.same({ { id = 1, err = "connection closed" } }, scoped:perform())
    end
  end)

  it("frees a connection collected with commands waiting, and the server sees it go", function()
    if not server then return pending(why) end
    local before = clients(server)
    do
      local conn = connect(server)
      assert.are.equal("PONG", call(conn, { "PING" }).value)
      conn:send({ "BLPOP", "never", 0 })
      conn:send({ "PING" })
      drive(conn, 1, 4)
      assert.are.equal(before + 1, clients(server))
      local never = connect(server) -- and one that never got past connecting
      never:send({ "PING" })
    end
    collectgarbage()
    collectgarbage()
    local now
    for _ = 1, 100 do
      now = clients(server)
      if now == before then break end
      transport:wait(0.05)
    end
    assert.are.equal(before, now)
  end)

  it("drives the connection from an event loop's readiness with action()", function()
    if not server then return pending(why) end
    local conn = connect(server)
    conn:action(true, false) -- not what it waits for: nothing happens
    local id = conn:send({ "ECHO", "loop" })
    local got = {}
    for _ = 1, 400 do
      local events = conn:events()
      if not events or #got > 0 then break end
      transport:wait(0.05, conn:fd(), events)
      conn:action(events:find("r", 1, true) ~= nil, events:find("w", 1, true) ~= nil)
      got = conn:perform()
    end
    assert.are.same({ { id = id, value = "loop" } }, got)
    conn:close()
  end)

  it("wakes a transport's blocking wait when the store's socket is ready", function()
    if not server then return pending(why) end
    local conn = connect(server)
    assert.are.equal("PONG", call(conn, { "PING" }).value)
    conn:send({ "ECHO", "awake" })
    local got = {}
    local start = core.now()
    for _ = 1, 5 do
      got = conn:perform()
      if #got > 0 then break end
      transport:wait(60, conn:fd(), conn:events())
    end
    -- a generous bound, no timing: a wait deaf to the socket would take a minute
    assert.truthy(core.now() - start < 30)
    assert.are.same("awake", got[1].value)
    -- an fd with no events is nothing to watch; events must be r, w or rw
    transport:wait(0, conn:fd(), nil)
    assert.has_error(function() transport:wait(0, conn:fd(), "x") end)
    assert.has_error(function() transport:wait(0, -1, "r") end)
    conn:close()
  end)

  it("lets a transport's wait watch the store's socket beside many of libcurl's", function()
    if not server then return pending(why) end
    local conn = connect(server)
    local t = core.new_transport { max_connections = 40 }
    local requests = {}
    for i = 1, 30 do -- more sockets than the wait keeps on its stack
      requests[i] = t:request { method = "GET", url = os.getenv("DASHSCOPE_TEST_BASE_URL") .. "/tasks/w-" .. i,
                                timeout = 10 }
    end
    local id = conn:send({ "PING" })
    local got, done = {}, 0
    for _ = 1, 400 do
      t:perform()
      for _, r in ipairs(conn:perform()) do got[#got + 1] = r end
      done = 0
      for _, r in ipairs(requests) do done = done + (r:done() and 1 or 0) end
      if done == 30 and #got == 1 then break end
      t:wait(0.05, conn:fd(), conn:events())
    end
    assert.are.equal(30, done)
    for _, r in ipairs(requests) do assert.is_number(r:response().status) end
    assert.are.same({ { id = id, value = "PONG" } }, got)
    t:close()
    conn:close()
  end)

  it("raises for misuse, naming the argument", function()
    local function raises(fn, text)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(text, 1, true), tostring(err))
    end
    raises(function() hiredis.connect(nil, 1) end, "#1")
    raises(function() hiredis.connect("127.0.0.1", 0) end, "port")
    raises(function() hiredis.connect("127.0.0.1", 70000) end, "port")
    raises(function() hiredis.connect("", 1) end, "host")
    raises(function() hiredis.connect("127.0.0.1\0x", 1) end, "host")
    local conn = assert(hiredis.connect("127.0.0.1", redis.free_port()))
    raises(function() conn:send("PING") end, "table expected")
    raises(function() conn:send({}) end, "argv")
    raises(function() conn:send({ "SET", {} }) end, "argv[2]")
    raises(function() conn:send({ "SET", "k", true }) end, "argv[3]")
    raises(function() conn:send({ "subscribe", "c" }) end, "argv[1]: subscribe")
    raises(function() conn:send({ "MONITOR" }) end, "argv[1]: MONITOR")
    raises(function() conn:action("yes") end, "boolean expected")
    raises(function() conn.perform(io.stdout) end, "dashscope.Redis expected")
    raises(function() conn.close({}) end, "dashscope.Redis expected")
    conn:close()
    raises(function() conn:send({ "PSUBSCRIBE", "c*" }) end, "argv[1]") -- misuse first, closed or not
  end)

  it("is a module of its own, exporting one symbol (the core loads without hiredis)", function()
    assert.are.equal(core.VERSION, hiredis.VERSION)
    local function run(cmd)
      local p = assert(io.popen(cmd))
      local out = p:read("*a")
      p:close()
      return out
    end
    for template in package.cpath:gmatch("[^;]+") do
      local so = template:gsub("%?", "dashscope/hiredis")
      local f = io.open(so)
      if f then
        f:close()
        assert.are.equal("luaopen_dashscope_hiredis\n",
          run("nm -D --defined-only " .. so .. " | awk '$2 == \"T\" { print $3 }'"))
        local core_so = so:gsub("hiredis%.so$", "core.so")
        assert.are.equal("", run("nm -D --undefined-only " .. core_so .. " | grep -i redis"))
        return
      end
    end
    error("no dashscope/hiredis.so on package.cpath")
  end)
end)

describe("dashscope.hiredis against a hostile server", function()
  -- Each case: the connection closes with an error naming the limit, the command waiting gets it
  -- too, and the server could not make it read its 64 MiB.
  local cases = {
    { "endless-bulk", "over 1 MiB" },
    { "endless-line", "over 1 MiB" },
    { "huge-array", "an array over 4096 elements" },
    { "many-values", "more than 65536 values" },
    { "deep", "depth" },
  }
  for _, case in ipairs(cases) do
    local mode, reason = case[1], case[2]
    it("closes with an error on " .. mode .. ", having read a bounded amount", function()
      local fake = redis.hostile(mode)
      local conn = assert(hiredis.connect("127.0.0.1", fake.port))
      local id = conn:send({ "GET", "k" })
      local got = drive(conn, 1, 2000)
      local state, err = conn:state()
      conn:close()
      local sent = fake.sent()
      fake:stop()
      assert.are.equal("closed", state)
      assert.truthy(err:find(reason, 1, true), err)
      assert.are.same({ { id = id, err = err } }, got)
      assert.truthy(sent and sent < 64 * 1024 * 1024, tostring(sent))
    end)
  end

  it("closes with a protocol error on a reply no command asked for (hiredis would abort)", function()
    local fake = redis.hostile("unasked")
    local conn = assert(hiredis.connect("127.0.0.1", fake.port))
    local id = conn:send({ "PING" })
    local got = drive(conn, 2, 400)
    local state, err = conn:state()
    conn:close()
    fake:stop()
    assert.are.same({ { id = id, value = "OK" } }, got)
    assert.are.equal("closed", state)
    assert.truthy(err:find("no command asked for", 1, true), err)
  end)
end)
