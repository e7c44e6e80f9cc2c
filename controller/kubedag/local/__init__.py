"""The local adapter: runs each task instance try as a process on this machine (``kubedag dags test``)."""
