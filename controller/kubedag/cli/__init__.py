"""The ``kubedag`` command line (Typer + Rich). Heavy modules are imported inside commands, so
``kubedag --help`` and short commands start fast."""
