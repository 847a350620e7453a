"""Build, push, watch and chain the suite's notebooks as Kaggle T4 kernels with the official kaggle client.

Modules: ``config`` (kernels.toml), ``build`` (kernel folders, packaged code dataset), ``client`` (strict,
retrying wrapper of the client's Python API), ``chain`` (multi-session runs). The ``kaggle`` package is
imported only when an API call is made, because it authenticates at import time."""
