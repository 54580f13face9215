"""The logging of HPE's SWCI web client: the default 'swci-web' logger (the console, plus the
file named by SWCI_WEB_LOG) that a Swci made without a logger writes to, and the reading of
HPE's logLv argument, a logging number or a level name."""

from __future__ import annotations

import logging
import os

LOGGER_NAME = "swci-web"
LOG_FILE_ENV = "SWCI_WEB_LOG"  # the default logger's file; empty: console only
DEFAULT_LOG_FILE = "swci-web.log"
HANDLER_MARK = "_swarmlearning_swci_handler"  # set on the handlers this module adds

_LEVELS = {"CRITICAL": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
           "INFO": logging.INFO, "DEBUG": logging.DEBUG}


def default_logger(level: int | str) -> logging.Logger:
    """The 'swci-web' logger writing to the console and to SWCI_WEB_LOG (default swci-web.log).
    Handlers this module added before are replaced, so repeated clients do not repeat lines."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, HANDLER_MARK, False):
            logger.removeHandler(handler)
            handler.close()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    log_file = os.environ.get(LOG_FILE_ENV, DEFAULT_LOG_FILE)
    if log_file:
        handlers.append(logging.FileHandler(log_file, delay=True))
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, HANDLER_MARK, True)
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def log_level(value: int | str) -> int:
    """A logging level from logging.INFO-style numbers or 'INFO'-style names; WARNING otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value in _LEVELS.values() else logging.WARNING
    return _LEVELS.get(str(value).strip().upper(), logging.WARNING)
