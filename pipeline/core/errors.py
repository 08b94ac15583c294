"""The one error type the pipeline raises for bad input (params, data, checksums)."""


class PipelineError(Exception):
    """A problem the user can fix. The message names the file, the key and the fix."""
