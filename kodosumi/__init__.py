"""Kodosumi's shared core: identity and PKI, configuration, the error catalog, telemetry.

Daemons (`kodosumid`, `registryd`), the engine and the client SDK build on this package; it
never imports any of them.
"""

__version__ = "0.1.0"
