"""gunicorn settings shared by `make run` and the image, whose command lines add bind and workers:
``gunicorn config.wsgi --config python:config.gunicorn --bind 127.0.0.1:8000``.
"""

accesslog = "-"
# The default format, then the request id the service answered with (X-Request-ID), so an access
# line joins the application's JSON log lines of the same request.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)
# The longest request line gunicorn reads: its maximum, so URLs between the service's own limit
# (MAX_URL_LENGTH) and this get the service's JSON 414; gunicorn's own 414 is an HTML page.
limit_request_line = 8190
