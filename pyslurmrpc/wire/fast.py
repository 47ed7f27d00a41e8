"""FastStruct now lives with the rest of construct's internals (kept until the schema modules import it there)."""

from ._construct_internals import FastStruct  # noqa: F401
