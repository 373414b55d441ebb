"""The ``provenance`` command line (typer and rich): a thin layer over the library and the flow.

``runs`` holds ``run`` and ``serve``, ``queries`` the questions asked of a
run's outputs, ``console`` what they share.  The library never imports this
package; the flow neither.
"""
