from rest_framework.metadata import SimpleMetadata


class DescriptiveMetadata(SimpleMetadata):
    """OPTIONS answers the view's name, description and media types; /api/schema/ has the rest.

    DRF's default also describes POST/PUT input from ``serializer_class``, which here is the output
    serializer (inputs have their own), and to do so calls ``get_object()``: a database lookup on
    every OPTIONS, and a 500 on views whose URL carries no id (``/api/notifications/preferences/``).
    """

    def determine_actions(self, request, view):
        return {}
