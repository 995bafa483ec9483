"""What every app's REST API shares: the base view (request size from Content-Length), the image
field, the JSON parser, the error handler and the stable error codes. It imports no app; the
apps' API modules import it (``urls.py`` here is wiring, like ``facesite/urls.py``)."""
