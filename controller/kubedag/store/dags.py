"""The DAGs the metadata DB knows, as a :class:`kubedag.app.operations.DagSource`: each ``dag`` row's stored
``spec`` (recorded by ``kubedag scheduler``, ``kubedag standalone`` or ``kubedag dags test``) parsed again, as
the DAG was when it was recorded. Rows that do not parse (e.g. the controller's ``<namespace>/<name>`` keys of
another DB) are skipped and named in :attr:`StoredDags.errors`."""

from __future__ import annotations

from typing import Any

from kubedag.app.operations import NotFound, OperationError
from kubedag.core.spec.dag import DAG

API_VERSION = "kubedag.io/v1alpha1"


class StoredDags:
    """DAGs from the ``dag`` table of the DB behind ``sessionmaker``."""

    def __init__(self, sessionmaker: Any) -> None:
        self.sessionmaker = sessionmaker
        self.errors: dict[str, str] = {}
        """dag_id -> why its stored spec did not parse."""

    @staticmethod
    def _parse(row: Any) -> DAG:
        from kubedag.core.spec import parse_dag

        manifest = {"apiVersion": API_VERSION, "kind": "DAG", "metadata": {"name": row.dag_id}, "spec": row.spec}
        if row.namespace:
            manifest["metadata"]["namespace"] = row.namespace
        return parse_dag(manifest, f"DAG {row.dag_id!r} of the metadata DB")

    def dag(self, name: str) -> DAG:
        """The DAG ``name`` as the DB recorded it. Raises :class:`NotFound` (naming the options that find DAGs)."""
        from kubedag.core.spec import DAGValidationError
        from kubedag.store import repository

        with self.sessionmaker() as session:
            row = repository.get_dag(session, name)
            if row is None:
                raise NotFound(f"no DAG {name!r} in the metadata DB: pass --dags-folder DIR (or set "
                               "KUBEDAG_DAGS_FOLDER), or -f FILE, or run `kubedag scheduler` on its folder first")
            try:
                return self._parse(row)
            except DAGValidationError as exc:
                raise OperationError(f"DAG {name!r} of the metadata DB is invalid: "
                                     + "; ".join(str(e) for e in exc.errors)) from None

    def dags(self) -> list[DAG]:
        """Every DAG of the DB whose stored spec parses, by name."""
        from kubedag.core.spec import DAGValidationError
        from kubedag.store import repository

        out = []
        with self.sessionmaker() as session:
            for row in repository.list_dags(session):
                try:
                    out.append(self._parse(row))
                except DAGValidationError as exc:
                    self.errors[row.dag_id] = "; ".join(str(e) for e in exc.errors)
        return out
