-- wrk script for the echo workload: POST a 1 MiB body (wrk adds Content-Length).
wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
