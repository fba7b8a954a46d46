"""Signed threat intelligence shared between protocols: STIX 2.1 bundles of an incident's indicators,
signed with an Ethereum key (``bundle``, ``signing``, ``gather``, ``export``), and peers' bundles
verified and pulled into the store the intel monitors match (``feed``). ``docs/intel.md``."""
