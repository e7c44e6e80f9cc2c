"""Kubernetes integration: the CustomResourceDefinitions generated from the manifest models (:mod:`.crds`)."""
