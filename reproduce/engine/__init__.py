"""The engine every reproducer shares: its command line and publishing (``base``), the diff engine
(``report``), the regression rule (``regression``, ``stats``), provenance, and the two training runners."""
