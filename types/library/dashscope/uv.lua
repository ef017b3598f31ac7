---@meta dashscope.uv

-- LuaCATS annotations of `require("dashscope.uv")`, the libuv driver of a client (Neovim's
-- vim.uv / vim.loop, or require("luv")). A definition file, never loaded by Lua; see
-- types/README.md. The types `uv`, `uv.uv_timer_t` and `uv.uv_poll_t` are luv's own, as
-- lua-language-server's luv library (and Neovim's runtime) define them: this file names them and
-- does not define them (spec/types_spec.lua lists them as luv's). The local `uv` below is this
-- module, named as in src/dashscope/uv.lua; the type `uv` is luv's module.

---Options of `require("dashscope.uv").attach`.
---@class dashscope.uv.AttachOptions
---@field on_error? fun(err: any) receives every error raised while driving, by a callback or the client (default: a line on stderr); errors never reach the loop

---Drives one client from a libuv loop: one poll handle per socket libcurl wants watched and one
---timer for the client's next piece of work. Every blocking call of the client (a submit, `poll`,
---`wait`, `cancel`) re-syncs the handles when it returns.
---@class dashscope.uv.Driver
---@field client dashscope.Client the client driven
---@field uv uv the luv module given to attach
---@field on_error fun(err: any) where errors raised while driving go
---@field detached? boolean true once detach() has run
---@field private polls table<integer, uv.uv_poll_t> the poll handle of each watched socket
---@field private timer uv.uv_timer_t the timer of the client's next piece of work
local Driver = {}

---Steps the client from the loop at once and re-syncs the handles. Call it after adding work other
---than through a blocking call, e.g. `client:watch` on a task from `client:task(id)`.
function Driver:kick() end

---Stops and closes every handle; the client is left as it is (close it yourself, after this).
---Idempotent.
function Driver:detach() end

---The libuv driver: `require("dashscope.uv").attach(client, vim.uv)`.
---@class dashscope.uv
local uv = {}

---Attaches a driver to `client` on the luv module `luv` and kicks it once.
---@param client dashscope.Client
---@param luv uv the luv module: vim.uv (vim.loop before Neovim 0.10), or require("luv")
---@param opts? dashscope.uv.AttachOptions
---@return dashscope.uv.Driver driver
function uv.attach(client, luv, opts) end

return uv
