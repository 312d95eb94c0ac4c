"""``python -m overlap_relevance.model.evaluation`` (``make evaluate``); see :mod:`.cli`."""

from .cli import main

main()
