"""The local "DAG bag": the folder of a DAG manifest, read as Airflow reads its DAGs folder.

For ``kubedag dags test FILE`` the folder of ``FILE`` plays the part of the cluster namespace: its YAML
files (``*.yaml``, ``*.yml``, not recursive) may hold

* DAG manifests (``kind: DAG``): the targets of ``trigger`` tasks, found by name (:meth:`DagBag.dag`);
* ConfigMaps and Secrets (``apiVersion: v1``): ``spec.variablesFrom`` / ``spec.connectionsFrom`` and the
  webhook URLs of notifiers (``urlFrom``, ``webhookUrlFrom``), as ``kubectl apply -f folder/`` would create them;
* Pools (``kind: Pool``, ``apiVersion: kubedag.io/v1alpha1``, ``spec.slots``).

Reading is lazy and cheap: each file's text is read once, and a file is parsed as YAML only when its text
mentions the kind asked for. A file that does not parse is recorded in :attr:`DagBag.errors` and skipped, so a
broken manifest next to the DAG does not break a run that does not need it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from kubedag.core.spec.dag import DAG, DEFAULT_POOL, DEFAULT_POOL_SLOTS

POOL_API_VERSION = "kubedag.io/v1alpha1"
_KIND = re.compile(r"^\s*kind:\s*[\"']?(\w+)", re.MULTILINE)


class DagBagError(LookupError):
    """A DAG, Pool or object asked for is not in the folder (or its file does not parse); the message says which."""


class DagBag:
    """The YAML files of ``folder`` (see the module docstring). Every lookup is cached."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.errors: dict[str, str] = {}
        """file name -> why it could not be parsed (only files that were needed and parsed)."""
        self._docs: dict[Path, list[Any]] = {}

    @cached_property
    def _texts(self) -> dict[Path, str]:
        out: dict[Path, str] = {}
        try:
            files = sorted(p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        except OSError:
            return out
        for path in files:
            try:
                out[path] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self.errors[path.name] = str(exc)
        return out

    def _documents(self, kinds: tuple[str, ...]) -> list[Any]:
        """Documents of the files whose text names one of ``kinds`` (parsed once; broken files skipped)."""
        import yaml

        docs: list[Any] = []
        for path, text in self._texts.items():
            if not any(k in kinds for k in _KIND.findall(text)):
                continue
            if path not in self._docs:
                try:
                    self._docs[path] = [d for d in yaml.safe_load_all(text) if d is not None]
                except yaml.YAMLError as exc:
                    self.errors[path.name] = f"invalid YAML: {exc}"
                    self._docs[path] = []
            docs.extend(self._docs[path])
        return docs

    def _broken(self) -> str:
        return "".join(f"; {name} was skipped: {why}" for name, why in self.errors.items())

    # -- DAGs -------------------------------------------------------------------------------------
    def dag(self, name: str) -> DAG:
        """The DAG called ``name`` (``metadata.name``) in the folder.

        Raises:
            DagBagError: no such DAG (the message names the folder and any file that did not parse), or its
                manifest is invalid (with every problem, as ``kubedag dags validate`` prints them).
        """
        from kubedag.core.spec import DAGValidationError, parse_dag

        for doc in self._documents(("DAG",)):
            if isinstance(doc, dict) and doc.get("kind") == "DAG" and (doc.get("metadata") or {}).get("name") == name:
                try:
                    return parse_dag(doc, f"DAG {name!r} in {self.folder}")
                except DAGValidationError as exc:
                    problems = "; ".join(str(e) for e in exc.errors)
                    raise DagBagError(f"DAG {name!r} in {self.folder} is invalid: {problems}") from None
        raise DagBagError(f"no DAG named {name!r} in {self.folder}{self._broken()}")

    # -- ConfigMaps and Secrets -------------------------------------------------------------------
    @cached_property
    def objects(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``{(kind, name): object}`` of the folder's ConfigMaps and Secrets (see
        :func:`kubedag.core.secrets.objects_from_documents`)."""
        from kubedag.core.secrets import objects_from_documents

        return objects_from_documents(self._documents(("ConfigMap", "Secret", "List")))

    def get(self, kind: str, name: str) -> Mapping[str, Any] | None:
        """The ConfigMap or Secret ``name`` (``kind``: ``"ConfigMap"`` or ``"Secret"``), None if there is none:
        the ``get`` of :func:`kubedag.core.secrets.load_sources`."""
        return self.objects.get((kind, name))

    @cached_property
    def secret_values(self) -> dict[tuple[str, str], str]:
        """``{(secret name, key): decoded value}`` of every Secret (for :func:`kubedag.core.notify.static_resolver`)."""
        from kubedag.core.secrets import secret_values

        out: dict[tuple[str, str], str] = {}
        problems: list[str] = []
        for (kind, name), obj in self.objects.items():
            if kind == "Secret":
                for key, value in secret_values(obj, f"Secret {name!r}", problems).items():
                    out[(name, key)] = value
        return out

    # -- Pools ------------------------------------------------------------------------------------
    @cached_property
    def pools(self) -> dict[str, int]:
        """Pool name -> slots: every ``kind: Pool`` of the folder (``spec.slots``, an int >= 0), plus
        ``default-pool`` with :data:`~kubedag.core.spec.dag.DEFAULT_POOL_SLOTS` (128) unless a Pool of that name exists
        (Airflow's ``default_pool`` with ``[core] default_pool_task_slot_count``). A Pool whose ``spec.slots`` is
        not an int >= 0 is recorded in :attr:`errors` and left out (its tasks then wait, and the runner's
        "cannot progress" error names the pool)."""
        pools: dict[str, int] = {}
        for doc in self._documents(("Pool",)):
            if not isinstance(doc, dict) or doc.get("kind") != "Pool" or doc.get("apiVersion") != POOL_API_VERSION:
                continue
            name = (doc.get("metadata") or {}).get("name")
            slots = (doc.get("spec") or {}).get("slots")
            if not isinstance(name, str) or not name:
                self.errors[f"Pool {name!r}"] = "metadata.name: a Pool needs a name"
                continue
            if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
                self.errors[f"Pool {name!r}"] = f"spec.slots: expected an integer >= 0, got {slots!r}"
                continue
            pools[name] = slots
        pools.setdefault(DEFAULT_POOL, DEFAULT_POOL_SLOTS)
        return pools
