"""The sensor check program, an entry point: ``python -m kubedag.sensors file|http|external ...``
(:mod:`kubedag.sensors.program`), which task pods and local processes run.

It composes the pure rules (:mod:`kubedag.core.sensors`: poke intervals, the poke loop, ``externalTask``
outcomes, the check's command line), the file and http checks (:mod:`kubedag.http.checks`) and the
``externalTask`` DB query (:mod:`kubedag.store.external`). Importing this package imports nothing else.
"""
