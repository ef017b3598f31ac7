-- The documents a user reads first say what the code does.
describe("the docs", function()
  it("have reference tables generated from the current contracts (make docs)", function()
    -- under the interpreter of this run (make test sets LUA), which finds its own build
    local ok = os.execute((os.getenv("LUA") or "lua5.4") .. " scripts/gen-reference.lua --check docs/reference.md")
    assert.is_truthy(ok == true or ok == 0, "docs/reference.md is out of date: run make docs")
  end)

  local function read(path)
    local f = assert(io.open(path))
    local text = f:read("*a")
    f:close()
    return text
  end

  it("show the two commands in the README and link the reference", function()
    local readme = read("README.md")
    assert.truthy(readme:find("make demo", 1, true))
    assert.truthy(readme:find("make test", 1, true))
    assert.truthy(readme:find("docs/reference.md", 1, true))
  end)

  it("name every promised client and task method in the reference", function()
    local ref = read("docs/reference.md")
    for _, name in ipairs { "dashscope.new", "client:videoretalk", "client:emoji", "client:liveportrait",
                            "client:submit", "client:task", "client:step", "client:close", "task:status",
                            "task:poll", "task:wait", "task:result", "task:cancel" } do
      assert.truthy(ref:find(name, 1, true), name)
    end
  end)
end)
