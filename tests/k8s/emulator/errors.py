"""
Kubernetes ``Status`` errors, as the real API server renders them.

Every failure of the real kube-apiserver is a JSON ``Status`` object with
``kind: Status``, ``status: Failure``, a machine-readable ``reason``
(``NotFound``, ``AlreadyExists``, ``Conflict``, ``Invalid``...), the HTTP
``code`` and ``details`` (``name``, ``group``, ``kind``, ``causes``).
Clients branch on these: the official client raises ``ApiException`` with the
status code, kopf maps 404/409/422 to its own exception classes.
"""
from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """An API failure to be rendered as a ``Status`` body with its HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            'kind': 'Status',
            'apiVersion': 'v1',
            'metadata': {},
            'status': 'Failure',
            'message': self.message,
            'reason': self.reason,
            'code': self.code,
        }
        if self.details is not None:
            body['details'] = self.details
        return body


def _qualified(plural: str, group: str) -> str:
    # The real server names the resource as "pods" or "widgets.example.com" in messages.
    return f'{plural}.{group}' if group else plural


def _details(plural: str, group: str, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {'kind': plural}
    if name is not None:
        details['name'] = name
    if group:
        details['group'] = group
    return details


def not_found(plural: str, group: str, name: str) -> StatusError:
    return StatusError(404, 'NotFound', f'{_qualified(plural, group)} "{name}" not found',
                       _details(plural, group, name))


def already_exists(plural: str, group: str, name: str) -> StatusError:
    return StatusError(409, 'AlreadyExists', f'{_qualified(plural, group)} "{name}" already exists',
                       _details(plural, group, name))


def conflict(plural: str, group: str, name: str, why: str | None = None) -> StatusError:
    why = why or 'the object has been modified; please apply your changes to the latest version and try again'
    return StatusError(409, 'Conflict', f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
                       _details(plural, group, name))


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> StatusError:
    """422 ``Invalid``: the message lists every field error, as ``field.ErrorList`` does."""
    texts = [f"{c['field']}: {c['message']}" if c.get('field') else c['message'] for c in causes]
    joined = texts[0] if len(texts) == 1 else '[' + ', '.join(texts) + ']'
    details: dict[str, Any] = {'name': name, 'kind': kind, 'causes': causes}
    if group:
        details['group'] = group
    return StatusError(422, 'Invalid', f'{kind}{"." + group if group else ""} "{name}" is invalid: {joined}', details)


def field_error(field: str, message: str, reason: str = 'FieldValueInvalid') -> dict[str, str]:
    return {'reason': reason, 'message': message, 'field': field}


def bad_request(message: str) -> StatusError:
    return StatusError(400, 'BadRequest', message)


def forbidden(plural: str, group: str, name: str, why: str) -> StatusError:
    return StatusError(403, 'Forbidden', f'{_qualified(plural, group)} "{name}" is forbidden: {why}',
                       _details(plural, group, name))


def method_not_allowed(message: str = 'the server does not allow this method on the requested resource') -> StatusError:
    return StatusError(405, 'MethodNotAllowed', message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, 'UnsupportedMediaType', f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type!r})')


def unprocessable(message: str) -> StatusError:
    """422 for patches that cannot be applied (e.g. a failed JSON-patch ``test`` op)."""
    return StatusError(422, 'Invalid', message)


def gone(message: str) -> StatusError:
    return StatusError(410, 'Expired', message)


def endpoint_not_found() -> StatusError:
    return StatusError(404, 'NotFound', 'the server could not find the requested resource', {})
