"""``python -m kubedag.cli.trigger ...``: a ``trigger`` task's try run locally (see :mod:`kubedag.local.trigger`).

An entry point, so that it can give :func:`kubedag.local.trigger.main` the webhook sender
(:func:`kubedag.http.webhook_sender`): the triggered run's notifiers are notified, as ``kubedag dags test``'s are.
"""

from kubedag.http import webhook_sender
from kubedag.local.trigger import main

if __name__ == "__main__":
    raise SystemExit(main(make_sender=webhook_sender))
