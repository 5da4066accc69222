-- OpenAI Chat Completions client (OpenCode, Qwen Code, SDK scripts).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.post("/v1/chat/completions")
