"""What the tests and the benchmarks share, importable from the workspace root.

- processes: emulator processes on free loopback ports, redis-server, `celery worker`
- proxy: the counting reverse proxy in front of an emulator
- faults: what the proxy answers instead of forwarding (faults, error answers)
- stores: one StoreUnderTest per object store (its emulator, bucket, raw client,
  wire and error answers), registered in support.stores.STORES
- fscalls: counts the file system calls that name a path
- hostile: task ids that try to leave the results prefix
- storages: storages no provider knows, for the generic adapter
- project: the Django project and Celery app (and tasks) of worker subprocesses
"""
