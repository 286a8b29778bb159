"""Small checks shared by the request translators; each raises ``InvalidRequestError`` naming the field."""

from __future__ import annotations

from typing import Any

from codexgw.errors import InvalidRequestError

JSON_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def require_object(body: object) -> dict[str, Any]:
    """Return ``body`` if it is a JSON object, else raise (param ``None``: the whole body is wrong)."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object")
    return body


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise InvalidRequestError("'model' is required", param="model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError("'model' must be a non-empty string", param="model")
    return model.strip()


def optional_bool(body: dict[str, Any], key: str, param: str | None = None) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidRequestError(f"'{param or key}' must be a boolean", param=param or key)


def optional_type(body: dict[str, Any], key: str, kind: type, param: str | None = None) -> Any:
    """``body[key]`` if absent/null (``None``) or of type ``kind``; otherwise raise."""
    value = body.get(key)
    if value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    name = param or key
    raise InvalidRequestError(f"'{name}' must be {JSON_TYPE_NAMES.get(kind, kind.__name__)}", param=name)
