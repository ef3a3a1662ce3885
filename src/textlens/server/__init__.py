"""The local web page and JSON API (``textlens serve``)."""
