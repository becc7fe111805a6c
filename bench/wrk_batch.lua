-- POST /events with a prepared body of BATCH events (path in env BENCH_BODY).
wrk.method = "POST"
wrk.path = "/events"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
