-- wrk script for the upload workloads: a multipart/form-data POST with a 1 MiB file part and
-- a text field, as a browser sends a file upload.
local boundary = "----rwsgibenchboundary7MA4YWxk"
local file = string.rep("0123456789abcdef", 65536)
wrk.method = "POST"
wrk.body = "--" .. boundary .. "\r\n" ..
  'Content-Disposition: form-data; name="name"\r\n\r\nbench\r\n' ..
  "--" .. boundary .. "\r\n" ..
  'Content-Disposition: form-data; name="file"; filename="data.bin"\r\n' ..
  "Content-Type: application/octet-stream\r\n\r\n" .. file .. "\r\n" ..
  "--" .. boundary .. "--\r\n"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
