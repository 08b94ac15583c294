"""The DVC stages: thin entry points (``python -m stages.<name>``) that load, call the library,
write and log. Importing this package as a stage process starts the stage's MLflow logger
(``pipeline.core.tracking.prestart``) before the stage's own imports, so the two load side by side."""
from pipeline.core.tracking import prestart

prestart()
