"""The web dashboard: server-rendered pages at ``/dashboard`` on the gateway's own port.

Jinja2 templates (``templates/``) give each page its frame, navigation, forms and labels; small
scripts of our own (``static/js/``) fill them from the admin API (``/api/...``, the teams contract
§4) and keep them live from ``/api/events``. The one third-party script, uPlot (charts), is
vendored under ``static/vendor/`` with its licence and pinned version (``static/vendor/README.md``).
Nothing is fetched from another origin: the Content-Security-Policy says ``'self'`` only and
allows no inline script.

It sits above ``api`` (it reads the gateway handle from there) and below ``serve``, which mounts
it unless ``serve --no-dashboard``.
"""
