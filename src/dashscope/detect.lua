-- The synchronous detectors (docs/protocol.md §7: liveportrait-detect, emoji-detect-v1): one POST, no
-- async header, answered at once. Every 200 is billed, a refusal included, so a detect is never
-- retried once it may have reached the service (only a 429, or a request that never left).
-- Also runs a model's detector first when the model wants what it finds (emoji-v1's boxes).
local check = require("dashscope.check")
local errors = require("dashscope.errors")
local files = require("dashscope.files")
local json = require("dashscope.json")
local models = require("dashscope.models")

local detect = {}

local PATH = "/services/aigc/image2video/face-detect"

-- Four finite numbers (an infinite one would not even encode into the next request).
local function is_box(v)
  if type(v) ~= "table" or #v ~= 4 then return false end
  for i = 1, 4 do
    local n = v[i]
    if type(n) ~= "number" or n ~= n or n == math.huge or n == -math.huge then return false end
  end
  return true
end

-- The documented answers: { pass, message } (liveportrait-detect), { bbox_face, ext_bbox_face }
-- (emoji-detect-v1, passed) or { code, message } (not passed).
local function shape(body)
  local out = body.output
  if type(out) ~= "table" then
    return nil, "no output"
  end
  if type(out.pass) == "boolean" or (is_box(out.bbox_face) and is_box(out.ext_bbox_face))
     or type(out.code) == "string" then
    return true
  end
  return nil, "output is neither a pass, boxes nor a refusal"
end

local function result(body)
  local out = body.output
  local r = { request_id = body.request_id, usage = body.usage }
  if type(out.pass) == "boolean" then
    r.pass, r.message = out.pass, type(out.message) == "string" and out.message or ""
  elseif is_box(out.bbox_face) then
    r.pass, r.face_bbox, r.ext_bbox = true, out.bbox_face, out.ext_bbox_face
  else
    r.pass, r.code, r.message = false, out.code, type(out.message) == "string" and out.message or ""
  end
  return r
end

--- Runs detector `contract` on `input` (checked fields; local files are uploaded for the
--- detector's own model) on a client's `engine`: the result table, or nil and err.
function detect.run(engine, contract, input)
  local uploaded, err = files.resolve(engine, contract.model, input)
  if uploaded == nil then
    return nil, err
  end
  local headers = { files.oss_header(input) }
  local body
  body, err = engine:call {
    method = "POST", path = PATH, purpose = "detect", headers = headers, expect = shape,
    body = json.encode({ model = contract.model, input = input,
                         parameters = contract.fixed and contract.fixed.parameters }),
    limiter = engine:limiter("submit", contract.model),
  }
  if not body then
    return nil, err
  end
  return result(body)
end

--- For a model whose contract names a detector (`detect = { method, fills }`): when every field the
--- detector fills is absent from `input`, runs it on the input fields it takes and fills them.
--- True, or nil and err (a refused image: code and message from the detector, err.detect = its
--- result). Some but not all of those fields given raises: they go together.
function detect.fill(engine, contract, input, method)
  local d = contract.detect
  local given, names = 0, {}
  for field in pairs(d.fills) do
    names[#names + 1] = field
    if input[field] ~= nil then given = given + 1 end
  end
  if given == #names then
    return true
  end
  table.sort(names)
  if given > 0 then
    check.fail(method, "give " .. table.concat(names, " and ") .. " together, or none of them (then "
      .. d.method .. " finds them)")
  end
  local detector = models[d.method]
  local dinput = {}
  for _, rule in ipairs(detector.fields) do dinput[rule.name] = input[rule.name] end
  local r, err = detect.run(engine, detector, dinput)
  if not r then
    return nil, err
  end
  if not r.pass then
    return nil, errors.new({ code = r.code or "DetectFailed", request_id = r.request_id, detect = r,
      message = detector.model .. " refused the image: " .. (r.message ~= "" and r.message or "no reason given")
        .. " (no " .. contract.model .. " job was submitted)" })
  end
  for field, key in pairs(d.fills) do input[field] = r[key] end
  return true
end

return detect
