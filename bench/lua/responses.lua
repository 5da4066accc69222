-- OpenAI Responses client (Codex CLI).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.post("/v1/responses")
