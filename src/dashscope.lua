-- The module a user requires: `require "dashscope"`. Lua on top, as LuaSocket's socket.lua over
-- socket.core: this file is the entry, over the C core `dashscope.core` (src/core.c), which needs
-- nothing from Lua and loads alone. For now the public table is built in dashscope.client.
return require("dashscope.client")
