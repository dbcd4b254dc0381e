# postgast ships a generated pg_query_pb2.pyi that mypy cannot parse (a field named "def");
# these stubs stand in for it so the rest of the package is type-checked.
from typing import Any

def __getattr__(name: str) -> Any: ...
