"""Uses two PyO3-based extension packages (cryptography >= 41, pydantic-core).

PyO3 modules refuse to initialise in a sub-interpreter ("PyO3 modules do not
yet support subinterpreters"), so this only works in the main interpreter
(WSGIApplicationGroup %{GLOBAL}, or rwsgi's automatic main-interpreter choice).
"""
import json
import os
import sys


def application(environ, start_response):
    try:
        import cryptography
        import pydantic_core
        from cryptography.fernet import Fernet
        from pydantic_core import SchemaValidator, core_schema

        key = Fernet.generate_key()
        f = Fernet(key)
        token = f.encrypt(b"rwsgi secret payload")
        roundtrip = f.decrypt(token)

        v = SchemaValidator(core_schema.typed_dict_schema({
            "name": core_schema.typed_dict_field(core_schema.str_schema()),
            "age": core_schema.typed_dict_field(core_schema.int_schema()),
        }))
        validated = v.validate_python({"name": "Ada", "age": "36"})
        try:
            v.validate_python({"name": "Ada", "age": "not a number"})
            rejected = False
        except pydantic_core.ValidationError:
            rejected = True
        out = {
            "ok": roundtrip == b"rwsgi secret payload" and validated == {"name": "Ada", "age": 36} and rejected,
            "cryptography": cryptography.__version__,
            "pydantic_core": pydantic_core.__version__,
            "validated": validated,
            "rejected_bad_input": rejected,
            "application_group": environ.get("mod_wsgi.application_group"),
        }
        status = "200 OK"
    except Exception as e:  # report instead of a bare 500 so tests can show why
        import traceback

        out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e),
               "traceback": traceback.format_exc().splitlines()[-8:],
               "pid": os.getpid(),
               "loaded": sorted(m for m in sys.modules if "pydantic" in m or "cryptography" in m),
               "application_group": environ.get("mod_wsgi.application_group")}
        status = "500 Internal Server Error"
    body = json.dumps(out).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
