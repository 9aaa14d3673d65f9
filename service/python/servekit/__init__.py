"""servekit: the kit shared by the Python services, as service/rust/servekit is the Rust one's.

Installed into the project's environment by scripts/setup.sh (`pip install --no-deps -e
service/python`), so the services, the PyO3 service (rust-ffi) and the harness import it by
name. Importing the package imports nothing heavy: each module says what it needs.

    inference      tokenize + ONNX Runtime + softmax (`Classifier`), serving.json; the request-path
                   code of the Python services and of rust-ffi (numpy, onnxruntime, transformers)
    plan           the scheduler: which waiting requests run next (pure)
    policy         the batching policy's defaults, read from service/batching_policy.json (pure)
    contract       the HTTP contract's request checks and error answers (pure)
    routes         the contract's routes, command line and server shared by both services (FastAPI)
    service        the Python service (service/python/app.py runs it)
    batched        the batched Python service (service/python-batched/app.py runs it)
    ceiling        the in-process ceiling: `Classifier.classify` in a loop
                   (python -m servekit.ceiling)
    batch_ceiling  the batch ceiling: `Classifier.classify_batch` in a loop
                   (python -m servekit.batch_ceiling)
"""
