"""The local stack: the template's tables and key in an embedded AWS emulator, the demo seed, and a
gateway that serves the template's routes through each function's real Lambda handler.

Development tooling only; it is not part of the Lambda layer.
"""
