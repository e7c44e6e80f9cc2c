"""``python -m kubedag.sensors file|http|external ...``: run one built-in sensor check (see :mod:`kubedag.sensors.checks`)."""

from kubedag.sensors.checks import main

raise SystemExit(main())
