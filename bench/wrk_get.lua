-- GET a fixed report URL (path in env BENCH_PATH).
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
