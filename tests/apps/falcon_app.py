"""Falcon test application."""
import falcon


class ThingsResource:
    def on_get(self, req, resp):
        resp.media = {"framework": "falcon", "things": [1, 2, 3], "params": dict(req.params)}

    def on_post(self, req, resp):
        body = req.get_media()
        resp.status = falcon.HTTP_201
        resp.media = {"created": body}


class ThingResource:
    def on_get(self, req, resp, thing_id):
        if thing_id == "missing":
            raise falcon.HTTPNotFound(title="no such thing")
        resp.media = {"id": thing_id, "path": req.path, "relative_uri": req.relative_uri}


class TextResource:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "falcon text"


application = falcon.App()
application.add_route("/things", ThingsResource())
application.add_route("/things/{thing_id}", ThingResource())
application.add_route("/text", TextResource())
