-- luacheck configuration (make lint). The code runs on Lua 5.1 to 5.4 and LuaJIT: "max" knows the
-- globals of all of them; what a version lacks is guarded in the code itself.
std = "max"
-- Lines wrap at 160. Contract tables (one rule per line, with its documentation string) and the
-- LuaCATS annotations (one ---@field per line, as LuaLS reads them) may run on: data, read whole.
max_line_length = 160
local contracts = { ignore = { "631" } }
files["src/dashscope/config.lua"] = contracts
files["src/dashscope/download.lua"] = contracts
files["src/dashscope/listing.lua"] = contracts
files["src/dashscope/models.lua"] = contracts

files["spec/**/*.lua"] = { std = "max+busted" }
files["examples/nvim/**/*.lua"] = { globals = { "vim" } } -- vim.g.* are set
files["examples/openresty/**/*.lua"] = { globals = { "ngx" } } -- ngx.status etc. are set
files["spec/nvim_spec.lua"] = { read_globals = { "vim" } }
files["types/**/*.lua"] = { ignore = { "212", "241", "631" } } -- definitions: no bodies; one line per field
