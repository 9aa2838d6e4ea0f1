"""A werkzeug Request/Response application echoing the request."""
import hashlib
import json

from werkzeug.wrappers import Request, Response


@Request.application
def application(request):
    data = request.get_data()
    out = {
        "method": request.method,
        "path": request.path,
        "script_root": request.script_root,
        "full_path": request.full_path,
        "url": request.url,
        "host": request.host,
        "scheme": request.scheme,
        "args": request.args.to_dict(flat=False),
        "form": request.form.to_dict(flat=False),
        "files": {k: len(v.read()) for k, v in request.files.items()},
        "cookies": request.cookies.to_dict(),
        "content_type": request.content_type,
        "content_length": request.content_length,
        "data_len": len(data),
        "data_sha256": hashlib.sha256(data).hexdigest(),
        "user_agent": request.headers.get("User-Agent"),
        "remote_addr": request.remote_addr,
    }
    resp = Response(json.dumps(out, sort_keys=True), mimetype="application/json")
    resp.headers["X-Demo"] = "werkzeug"
    return resp
