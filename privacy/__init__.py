"""Privacy by design: data inventory, retention audit and anonymised regulator releases.

The pure core is ``aggregate``, ``suppression``, ``inventory`` and ``noise`` (plain values
in, plain values out; the first three are held to it by the import contract "Pure cores
import no I/O library"); ``audit`` reads a ``Store`` through the storage contract;
``release`` builds a release and charges it to the ``ledger`` (SQLite); ``export`` writes
the files; ``commands`` is the click shell. Importing this package is light: OpenDP is
imported only by ``noise``.
"""
