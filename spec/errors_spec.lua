-- Failures of the service and the network come back as `nil, err`: each HTTP error class, bad
-- bodies, timeouts, a wrong key; retried where docs/protocol.md §11 allows, never where it forbids.
local helper = require("spec.support.helper")

local IMAGE, AUDIO = "https://example.com/f.png", "https://example.com/a.wav"

local function submit(client)
  return client:liveportrait { image_url = IMAGE, audio_url = AUDIO }
end

local function count(fragment)
  return #helper.requests(fragment)
end

describe("an error", function()
  local client
  before_each(function()
    helper.reset()
    client = helper.client()
  end)
  after_each(function() client:close() end)

  it("from a wrong key is InvalidApiKey with status and request id, and never shows the key", function()
    local c = helper.client({ api_key = "sk-wrong-secret-key" })
    local task, err = submit(c)
    assert.is_nil(task)
    assert.are.equal("InvalidApiKey", err.code)
    assert.are.equal("Invalid API-key provided.", err.message)
    assert.are.equal(401, err.status)
    assert.truthy(err.request_id)
    assert.is_false(err.retryable)
    assert.are.equal("InvalidApiKey: Invalid API-key provided. (HTTP 401, request_id " .. err.request_id .. ")",
                     tostring(err))
    assert.is_nil(tostring(err):find("sk-wrong-secret-key", 1, true))
    assert.is_nil(tostring(c):find("sk-wrong-secret-key", 1, true))
    for k, v in pairs(c) do
      assert.is_nil(tostring(v):find("sk-wrong-secret-key", 1, true), k)
    end
    assert.are.equal(1, count("/video-synthesis"))
    c:close()
  end)

  it("from a 400 on submit carries the service's code and message, and is not retried", function()
    helper.faults { { match = "submit", kind = "status", status = 400, code = "InvalidParameter",
                      message = "Field required: input.image_url" } }
    local _, err = submit(client)
    assert.are.equal("InvalidParameter", err.code)
    assert.are.equal("Field required: input.image_url", err.message)
    assert.are.equal(400, err.status)
    assert.are.equal(1, count("/video-synthesis"))
  end)

  for _, status in ipairs { 401, 403, 404 } do
    it("from a " .. status .. " on a status query is final", function()
      local task = assert(submit(client))
      helper.faults { { match = "query", kind = "status", status = status, code = "AccessDenied", message = "no" } }
      local _, err = task:wait()
      assert.are.equal(status, err.status)
      assert.are.equal("AccessDenied", err.code)
      assert.are.equal(1, count("/tasks/"))
    end)
  end

  it("from 404 ModelNotFound names the model problem", function()
    local _, err = client:submit("no-such-model", { x = 1 })
    assert.are.equal("ModelNotFound", err.code)
    assert.are.equal(404, err.status)
  end)

  it("ignores a Retry-After it cannot read, even a date os.time cannot take (a fuzzer's find)", function()
    local http = require("dashscope.http")
    assert.are.equal(5, http.retry_after("5"))
    assert.is_nil(http.retry_after("Mon, 01 Jan 99999999999 00:00:00 GMT"))
    assert.is_nil(http.retry_after("soon"))
  end)

  it("429 on submit is retried, honouring Retry-After, and creates one task", function()
    helper.faults { { match = "submit", kind = "status", status = 429, code = "Throttling.RateQuota",
                      message = "Requests rate limit exceeded, please try again later.", retry_after = "0",
                      count = 2 } }
    local task = assert(submit(client))
    assert.are.equal(3, count("/video-synthesis"))
    assert.are.equal(1, helper.stats().submits)
    assert(task:wait())
  end)

  it("429 on submit, retried past max_retries until call_timeout, returns the last error with the attempt count", function()
    -- a 429 created nothing: retried (under valgrind an attempt alone can take most of 0.5 s)
    local c = helper.client({ max_retries = 1, call_timeout = helper.UNDER_VALGRIND and 3 or 0.5 })
    helper.faults { { match = "submit", kind = "status", status = 429, code = "Throttling", message = "Requests throttling triggered.", count = 1000 } }
    local _, err = submit(c)
    assert.are.equal("Throttling", err.code)
    assert.are.equal(429, err.status)
    assert.is_true(err.retryable)
    assert.is_true(err.attempts > 2)
    assert.truthy(tostring(err):find(err.attempts .. " attempts", 1, true))
    assert.are.equal(0, helper.stats().submits)
    c:close()
  end)

  it("of a call that cannot be sent within call_timeout is Timeout, with nothing sent", function()
    local c = helper.client { call_timeout = 0.3, rate_limits = { submit = { ["emoji-v1"] = 1 } } }
    local fields = { image_url = "https://example.com/f.png", driven_id = "mengwa_kaixin",
                     face_bbox = { 1, 2, 30, 40 }, ext_bbox = { 0, 0, 50, 50 } }
    assert(c:emoji(fields))
    local t0 = require("dashscope.core").now()
    local t, err = c:emoji(fields) -- the quota frees only after 1 s: past the call's deadline
    assert.is_nil(t)
    assert.are.equal("Timeout", err.code)
    assert.truthy(tostring(err):find("call_timeout", 1, true))
    assert.is_true(require("dashscope.core").now() - t0 < 0.9)
    assert.are.equal(1, helper.stats().submits)
    c:close()
  end)

  it("429 on submit, retried past call_timeout, returns the last 429", function()
    local c = helper.client { call_timeout = 0.5, retry_base_delay = 0.2, retry_max_delay = 0.2, max_retries = 50 }
    helper.faults { { match = "submit", kind = "status", status = 429, retry_after = "1", count = 50 } }
    local _, err = submit(c)
    assert.are.equal(429, err.status)
    -- Retry-After 1 s is honoured up to retry_max_delay (0.2 s), and no retry is planned past the
    -- deadline: two or three attempts
    assert.is_true(err.attempts >= 2 and err.attempts <= 3, err.attempts)
    c:close()
  end)

  it("5xx on submit is never retried: the task may exist, and the message says so", function()
    helper.faults { { match = "submit", kind = "status", status = 500, code = "InternalError",
                      message = "An internal error has occurred, please try again later or contact service support." } }
    local _, err = submit(client)
    assert.are.equal("InternalError", err.code)
    assert.are.equal(500, err.status)
    assert.is_false(err.retryable)
    assert.truthy(err.message:find("may or may not have been created", 1, true))
    assert.are.equal(1, count("/video-synthesis"))
  end)

  it("a lost answer to a submit is not retried", function()
    helper.faults { { match = "submit", kind = "drop" } }
    local _, err = submit(client)
    assert.are.equal("NetworkError", err.code)
    assert.is_false(err.retryable)
    assert.truthy(err.message:find("may or may not have been created", 1, true))
    assert.are.equal(1, count("/video-synthesis"))
  end)

  for _, fault in ipairs {
    { kind = "status", status = 500, code = "InternalError", message = "x" },
    { kind = "status", status = 503, code = "ServiceUnavailable", message = "Model is unavailable, please try again later." },
    { kind = "status", status = 429, code = "Throttling.RateQuota", message = "slow down" },
    { kind = "garbage" },
    { kind = "truncated" },
    { kind = "badjson" },
    { kind = "drop" },
  } do
    it("on a status query (" .. (fault.status or fault.kind) .. ") is retried and the wait goes on", function()
      local task = assert(submit(client))
      fault.match, fault.count = "query", 2
      helper.faults { fault }
      local result = assert(task:wait())
      assert.are.equal("SUCCEEDED", result.status)
      assert.truthy(count("/tasks/") >= 3)
    end)
  end

  it("from a non-JSON 200 answer to a poll, past retries, is BadResponse", function()
    local c = helper.client({ max_retries = 0 })
    local task = c:task("abc")
    helper.faults { { match = "query", kind = "garbage" } }
    local status, err = task:poll()
    assert.is_nil(status)
    assert.are.equal("BadResponse", err.code)
    assert.are.equal(200, err.status)
    assert.is_true(err.retryable)
    c:close()
  end)

  it("from a truncated answer is BadResponse or NetworkError, never a crash", function()
    local c = helper.client({ max_retries = 0 })
    helper.faults { { match = "query", kind = "truncated" } }
    local _, err = c:task("abc"):poll()
    assert.truthy(err.code == "BadResponse" or err.code == "NetworkError", err.code)
    c:close()
  end)

  it("from a wrongly shaped JSON answer is BadResponse", function()
    local c = helper.client({ max_retries = 0 })
    helper.faults { { match = "submit", kind = "badjson" } }
    local _, err = submit(c)
    assert.are.equal("BadResponse", err.code)
    assert.truthy(err.message:find("no output.task_id", 1, true))
    c:close()
  end)

  it("from a slow server is Timeout", function()
    local c = helper.client({ timeout = 0.2, max_retries = 0 })
    helper.faults { { match = "query", kind = "slow", delay = 1 } }
    local _, err = c:task("abc"):poll()
    assert.are.equal("Timeout", err.code)
    assert.is_true(err.retryable)
    assert.is_nil(err.status)
    c:close()
  end)

  it("from a closed port is NetworkError, and a submit that never left is retried", function()
    local c = helper.dashscope.new { api_key = helper.KEY, base_url = "http://127.0.0.1:9/api/v1",
                                     max_retries = 2, retry_base_delay = 0.001 }
    local _, err = submit(c)
    assert.are.equal("NetworkError", err.code)
    assert.is_true(err.retryable)
    assert.are.equal(3, err.attempts)
    assert.truthy(tostring(err):find("^NetworkError: "))
    c:close()
  end)

  it("from an HTML error page keeps the status and a short text", function()
    local c = helper.client({ max_retries = 0 })
    helper.faults { { match = "query", kind = "status", status = 502, code = "x", message = "y" } }
    local _, err = c:task("abc"):poll()
    assert.are.equal(502, err.status)
    assert.is_true(err.retryable)
    c:close()
  end)
end)
