"""The application layer: scheduling, the run reconcile and the operations (trigger, clear, mark, backfill,
delete, pause), written against small ports (``kubedag.app.ports``) that the adapters implement.

Imports only ``kubedag.core``; never an adapter (store, k8s, local, http) or an I/O library.
"""
