"""Where log lines and library chatter go: one setup for every entry point.

Ladder's own loggers (``assistant.*``, ``evaluation.*``, ``finetune.*``, ``ui.*``,
``ladder.*``) print their warnings; their info lines show with ``--verbose``. What libraries
print on their own (transformers' and peft's FutureWarnings about renamed properties,
tqdm bars while weights load, convert or save, hub progress) tells a Ladder user nothing
they can act on, and it interleaves with Ladder's progress display: it is held back unless
``--verbose`` (or ``LADDER_VERBOSE=1``) asks for it.

Python warnings are routed into logging (``py.warnings``), so they follow the same switch.
tqdm and transformers read their switches when they are imported, so ``configure`` runs
before any heavy import (the CLI's callback does it first thing); for a library that is
already loaded it also sets the switch directly.
"""

from __future__ import annotations

import logging
import os
import sys

OWN_LOGGERS = ("assistant", "evaluation", "finetune", "ui", "ladder")
LIBRARY_LOGGERS = ("transformers", "peft", "trl", "accelerate", "sentence_transformers", "chromadb",
                   "huggingface_hub", "httpx", "urllib3", "datasets", "ragas", "langchain",
                   "py.warnings")  # fmt: skip
# Variables the libraries read at import time; set only when the user has not chosen.
QUIET_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
_HANDLER_NAME = "ladder-stderr"


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not the stream it was made
    with: a handler bound to a replaced stream (a finished CLI run's captured stderr, a closed
    pipe) would print "--- Logging error ---" and a traceback for every later line."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:  # StreamHandler.__init__ assigns it; always stderr
        pass


def configure(verbose: bool = False) -> None:
    """Set up logging for a run; safe to call more than once (the last call wins)."""
    verbose = verbose or os.environ.get("LADDER_VERBOSE", "") not in ("", "0", "false")
    for key, value in QUIET_ENV.items():
        if verbose:
            if os.environ.get(key) == value:  # ours from an earlier quiet call
                os.environ.pop(key)
        else:
            os.environ.setdefault(key, value)
    logging.captureWarnings(True)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _CurrentStderr()
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)
    # Only what this run asked to see: a library that lowers its own logger's level (or a test's
    # log capture) does not make its debug lines reach the user's terminal.
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose
                                           else "%(levelname)s: %(message)s"))  # fmt: skip
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.ERROR)
    if "transformers" in sys.modules:  # already imported: its own switches, set directly
        from transformers.utils import logging as hf_logging

        if verbose:
            hf_logging.set_verbosity_warning()
            hf_logging.enable_progress_bar()
        else:
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
