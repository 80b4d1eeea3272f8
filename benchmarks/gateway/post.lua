-- wrk script for benchmarks/gateway_overhead.py: POST the chat request body read from the file
-- named by GATEWAY_BENCH_BODY (benchmarks/gateway/chat_request.json). Per-gateway headers
-- (Authorization, Portkey's routing headers) come from wrk's -H options.
local path = assert(os.getenv("GATEWAY_BENCH_BODY"), "set GATEWAY_BENCH_BODY")
local file = assert(io.open(path, "rb"))
local body = file:read("*a"):gsub("%s+$", "")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
