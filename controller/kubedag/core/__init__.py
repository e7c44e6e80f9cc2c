"""The pure core: spec, states, timetable, templating, engine, the run pass, naming.

No I/O: no network, DB, Kubernetes or process libraries, directly or transitively (import-linter
checks it); "now" is always passed in.
"""
