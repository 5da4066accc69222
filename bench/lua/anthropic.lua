-- Anthropic Messages client (Claude Code).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.post("/v1/messages", {["anthropic-version"] = "2023-06-01"})
