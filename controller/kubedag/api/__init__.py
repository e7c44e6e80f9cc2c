"""kubedag's REST API: Airflow 3's public REST API (``/api/v2``) served with FastAPI from the application's ports
(:class:`~kubedag.app.catalog.Catalog` for reads, :mod:`kubedag.app.operations` and the
:class:`~kubedag.app.catalog.Backfills` port for writes), so the API is never a third implementation of an
operation. It imports no adapter: ``kubedag api`` (:mod:`kubedag.cli.api`) composes the local or cluster ones.

* :func:`create_app` / :class:`ApiServices`: the app and what it is served from.
* :mod:`kubedag.api.permissions`: every endpoint's Kubernetes permissions, in one table.
* :mod:`kubedag.api.auth`: identities (tokens, basic auth) and authorisation; local auth.
"""

from kubedag.api.app import create_app, serve
from kubedag.api.services import ApiServices

__all__ = ["ApiServices", "create_app", "serve"]
