"""Privacy by design: data inventory, retention audit and anonymised regulator releases.

Pure cores (``inventory``, ``audit``, ``suppression``, ``aggregate``, ``noise``,
``release``, ``export``) with thin shells (``ledger`` on SQLite, ``commands`` on click and
the Store). Importing this package is light: OpenDP is imported only by ``noise``.
"""
