"""Stand-in for airflow.models.param.Param: a default value with a JSON-schema-like check."""

_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}


class Param:
    def __init__(self, default=None, description=None, **schema):
        self.value = default
        self.description = description
        self.schema = schema
        self.resolve(default)

    def resolve(self, value):
        kind = self.schema.get("type")
        if kind is not None and not isinstance(value, _TYPES[kind]):
            raise ValueError("param value %r is not of type %s" % (value, kind))
        if "minimum" in self.schema and value < self.schema["minimum"]:
            raise ValueError("param value %r is below its minimum %r" % (value, self.schema["minimum"]))
        return value
