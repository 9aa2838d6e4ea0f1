-- wrk script for the readline workload: POST 1 MiB made of 64-byte lines.
wrk.method = "POST"
wrk.body = string.rep(string.rep("x", 63) .. "\n", 16384)
wrk.headers["Content-Type"] = "text/plain"
