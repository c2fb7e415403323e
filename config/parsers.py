from rest_framework import parsers
from rest_framework.exceptions import ParseError


class SafeJSONParser(parsers.JSONParser):
    """DRF's JSON parser, also refusing documents nested too deep for Python's decoder.

    ``json`` raises ``RecursionError`` (not ``ValueError``) at about a thousand levels of nesting,
    which DRF does not catch: without this, ``[[[[...]]]]`` would be a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply.") from exc
