"""``python -m kubedag.sensors file|http|external ...``: run one built-in sensor check (see :mod:`kubedag.sensors.program`)."""

from kubedag.sensors.program import main

raise SystemExit(main())
