"""Which model a command runs when none is given, and the words every ``--help`` uses for it.

Kept apart from :mod:`harness.models.zoo` (which reads TOML and imports urllib) so that the
command-line modules can state the default without slowing ``hil --help`` down, and so
that one sentence, not one per command, says what :func:`~harness.models.zoo.default_model_file`
does.
"""

from __future__ import annotations

#: The model the project ships, trained on synthetic images (the fallback default).
DEFAULT_MODEL = "vww-default"
#: The model every command defaults to once it is present (fetched or in ../shared/reference).
REFERENCE_MODEL = "mlperf-vww-96"
#: set (to anything but 0) to make the shipped model the default even where the reference is present
NO_REFERENCE_ENV = "HIL_NO_REFERENCE"
#: the default model as every ``--help`` names it
DEFAULT_MODEL_HELP = (
    f"{REFERENCE_MODEL} where present, else {DEFAULT_MODEL}; {NO_REFERENCE_ENV}=1: always {DEFAULT_MODEL}"
)
