"""The reference venue on a devnet: deployment options (one switch per vulnerability), deployment, and a
typed handle with role keys. See docs/venue.md.
"""

from __future__ import annotations

from breakglass.devnet.venue.deploy import deploy_venue, deploy_venue_set
from breakglass.devnet.venue.handle import MARKETS, Venue, VenueBalances
from breakglass.devnet.venue.keys import ROLE_INDEX, attacker_key, dev_key, role_key
from breakglass.devnet.venue.options import USD, VULNERABILITIES, VenueOptions

__all__ = [
    "MARKETS",
    "ROLE_INDEX",
    "USD",
    "VULNERABILITIES",
    "Venue",
    "VenueBalances",
    "VenueOptions",
    "attacker_key",
    "deploy_venue",
    "deploy_venue_set",
    "dev_key",
    "role_key",
]
