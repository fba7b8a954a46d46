"""``python -m breakglass.cli``: the same as the ``breakglass`` command."""

from breakglass.cli.main import main

main()
